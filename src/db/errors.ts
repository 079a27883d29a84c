// Which driver errors mean "the database cannot be reached" (→ 503 DATABASE_UNAVAILABLE) rather than a bug.
import {
  MongoClientClosedError,
  MongoNetworkError,
  MongoServerError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoNetworkTimeoutError,
} from 'mongodb';

/** Socket failures the driver may throw unwrapped when the server goes away mid-write. */
const SOCKET_ERRORS = new Set([
  'EPIPE',
  'ECONNRESET',
  'ECONNREFUSED',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/** Server codes of a server shutting down or killing operations (InterruptedAtShutdown, ShutdownInProgress…). */
const SHUTDOWN_CODES = new Set([11600, 91, 11602, 189]);

/**
 * A raw socket error, but not one from reading the request: Fastify gives those a statusCode (400), and a
 * client that hangs up mid-body (ECONNRESET "aborted") is no database outage.
 */
function isRawSocketError(error: unknown): boolean {
  return (
    error instanceof Error &&
    SOCKET_ERRORS.has(String((error as NodeJS.ErrnoException).code)) &&
    !('statusCode' in error)
  );
}

export function isDatabaseUnavailable(error: unknown): boolean {
  return (
    error instanceof MongoServerSelectionError ||
    (error instanceof MongoServerError &&
      (SHUTDOWN_CODES.has(Number(error.code)) ||
        // FerretDB cancels the operations in flight when it stops.
        (error.code === 1 && /context canceled/.test(error.message)))) ||
    isRawSocketError(error) ||
    error instanceof MongoNetworkError ||
    error instanceof MongoNetworkTimeoutError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
    // Operations in flight when the client is closed and connected afresh (db/monitor.ts resetIfStuck).
    error instanceof MongoClientClosedError ||
    (error instanceof Error && error.name === 'MongoPoolClearedError') ||
    (error instanceof Error && error.name === 'DatabaseUnavailableError')
  );
}

/**
 * A write refused by a unique index: E11000, or on FerretDB (SQLite) an update that breaks one, which it
 * reports as an internal error naming SQLite's constraint instead.
 */
export function isDuplicateKey(error: unknown): boolean {
  if (!(error instanceof MongoServerError)) return false;
  return error.code === 11000 || /UNIQUE constraint failed/.test(error.message);
}
