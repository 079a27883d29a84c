// Which driver errors mean "the database cannot be reached" (→ 503 DATABASE_UNAVAILABLE) rather than a bug.
import {
  MongoNetworkError,
  MongoServerError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoNetworkTimeoutError,
} from 'mongodb';

export function isDatabaseUnavailable(error: unknown): boolean {
  return (
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNetworkError ||
    error instanceof MongoNetworkTimeoutError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
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
