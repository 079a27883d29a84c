// Which driver errors mean "the database cannot be reached" (→ 503 DATABASE_UNAVAILABLE) rather than a bug.
import {
  MongoNetworkError,
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
