// Failed-login counters, keyed by account (`account:<email>`, also for emails that have no account, so a
// lockout reveals nothing) and by client address (`ip:<address>`).
import { MongoServerError, type Collection, type Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export interface ThrottleDoc {
  _id: string;
  failures: number;
  window_started_at: Date;
  locked_until: Date | null;
  /** How many times this key has been locked: each lock lasts twice as long as the previous one. */
  lock_level: number;
  updated_at: Date;
}

export class LoginThrottleRepository {
  private readonly throttle: Collection<ThrottleDoc>;

  constructor(db: Db) {
    this.throttle = db.collection<ThrottleDoc>(COLLECTIONS.loginThrottle);
  }

  findMany(keys: string[]): Promise<ThrottleDoc[]> {
    return this.throttle.find({ _id: { $in: keys } }).toArray();
  }

  /** Counts one attempt and returns the new state. */
  async addFailure(key: string, at: Date): Promise<ThrottleDoc> {
    const count = () =>
      this.throttle.findOneAndUpdate(
        { _id: key },
        {
          $inc: { failures: 1 },
          $set: { updated_at: at },
          $setOnInsert: { window_started_at: at, locked_until: null, lock_level: 0 },
        },
        { upsert: true, returnDocument: 'after' },
      );
    try {
      return (await count())!;
    } catch (error) {
      // Two first attempts racing to create the record: one insert loses; counting again updates it.
      if (error instanceof MongoServerError && error.code === 11000) return (await count())!;
      throw error;
    }
  }

  /** Takes back one counted attempt (the address's count, after a success). */
  undoFailure(key: string): Promise<unknown> {
    return this.throttle.updateOne({ _id: key, failures: { $gt: 0 } }, { $inc: { failures: -1 } });
  }

  /** Starts a new counting window (the old one expired); this attempt is its first. */
  resetWindow(key: string, at: Date): Promise<unknown> {
    return this.throttle.updateOne(
      { _id: key },
      { $set: { failures: 1, window_started_at: at, updated_at: at } },
    );
  }

  /** Locks the key unless it is locked already (a burst of failures locks once); true if this call did. */
  async lock(key: string, until: Date, level: number, at: Date): Promise<boolean> {
    const result = await this.throttle.updateOne(
      { _id: key, $or: [{ locked_until: null }, { locked_until: { $lte: at } }] },
      {
        $set: { locked_until: until, lock_level: level, failures: 0, window_started_at: at, updated_at: at },
      },
    );
    return result.modifiedCount === 1;
  }

  /** A successful login clears the failures; the last lock is kept so repeated locks still escalate. */
  clearFailures(key: string, at: Date): Promise<unknown> {
    return this.throttle.updateOne({ _id: key }, { $set: { failures: 0, updated_at: at } });
  }

  /** Deletes counters untouched since `before` that hold no lock ending after it; returns how many. */
  async deleteIdleBefore(before: Date): Promise<number> {
    const result = await this.throttle.deleteMany({
      updated_at: { $lt: before },
      $or: [{ locked_until: null }, { locked_until: { $lt: before } }],
    });
    return result.deletedCount;
  }

  remove(key: string): Promise<unknown> {
    return this.throttle.deleteOne({ _id: key });
  }
}
