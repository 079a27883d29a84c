// Failed-login counters, keyed by account (`account:<email>`, also for emails that have no account, so a
// lockout reveals nothing) and by client address (`ip:<address>`).
import type { Collection, Db } from 'mongodb';
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

  find(key: string): Promise<ThrottleDoc | null> {
    return this.throttle.findOne({ _id: key });
  }

  findMany(keys: string[]): Promise<ThrottleDoc[]> {
    return this.throttle.find({ _id: { $in: keys } }).toArray();
  }

  /** Counts one failure and returns the new state. */
  async addFailure(key: string, at: Date): Promise<ThrottleDoc> {
    const doc = await this.throttle.findOneAndUpdate(
      { _id: key },
      {
        $inc: { failures: 1 },
        $set: { updated_at: at },
        $setOnInsert: { window_started_at: at, locked_until: null, lock_level: 0 },
      },
      { upsert: true, returnDocument: 'after' },
    );
    return doc!;
  }

  lock(key: string, until: Date, level: number, at: Date): Promise<unknown> {
    return this.throttle.updateOne(
      { _id: key },
      {
        $set: { locked_until: until, lock_level: level, failures: 0, window_started_at: at, updated_at: at },
      },
    );
  }

  resetWindow(key: string, at: Date): Promise<unknown> {
    return this.throttle.updateOne(
      { _id: key },
      { $set: { failures: 1, window_started_at: at, updated_at: at } },
    );
  }

  /** A successful login clears the failures but remembers the lock level for a while (escalation). */
  clearFailures(key: string, at: Date): Promise<unknown> {
    return this.throttle.updateOne(
      { _id: key },
      { $set: { failures: 0, locked_until: null, updated_at: at } },
    );
  }

  remove(key: string): Promise<unknown> {
    return this.throttle.deleteOne({ _id: key });
  }
}
