// Failed-login bookkeeping, keyed by account (`account:<email>`, also for emails that have no account, so a
// lockout reveals nothing) and by client address (`ip:<address>`).
// Attempts are documents, one per attempt, counted by query: concurrent $inc on one counter loses updates
// on FerretDB, while inserts are never lost. Locks are a separate document per key.
import { MongoServerError, ObjectId, type Collection, type Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export interface LockDoc {
  _id: string;
  locked_until: Date | null;
  /** How many times this key has been locked in a row: each lock lasts twice as long as the previous one. */
  lock_level: number;
  updated_at: Date;
}

interface AttemptDoc {
  _id: ObjectId;
  key: string;
  at: Date;
}

export class LoginThrottleRepository {
  private readonly locks: Collection<LockDoc>;
  private readonly attempts: Collection<AttemptDoc>;

  constructor(db: Db) {
    this.locks = db.collection<LockDoc>(COLLECTIONS.loginThrottle);
    this.attempts = db.collection<AttemptDoc>(COLLECTIONS.loginAttempts);
  }

  findLocks(keys: string[]): Promise<LockDoc[]> {
    return this.locks.find({ _id: { $in: keys } }).toArray();
  }

  /** Records one attempt (an insert: never lost to a concurrent one, unlike an increment). */
  async recordAttempt(key: string, at: Date): Promise<ObjectId> {
    const _id = new ObjectId();
    await this.attempts.insertOne({ _id, key, at });
    return _id;
  }

  /** How many attempts on `key` since `since`, up to and including `upTo` when given (an attempt's rank). */
  countAttempts(key: string, since: Date, upTo?: ObjectId): Promise<number> {
    return this.attempts.countDocuments({
      key,
      at: { $gte: since },
      ...(upTo ? { _id: { $lte: upTo } } : {}),
    });
  }

  /** When the oldest attempt still inside the window was made. */
  async oldestAttemptSince(key: string, since: Date): Promise<Date | null> {
    const oldest = await this.attempts
      .find({ key, at: { $gte: since } })
      .sort({ _id: 1 })
      .limit(1)
      .next();
    return oldest?.at ?? null;
  }

  forgetAttempt(id: ObjectId): Promise<unknown> {
    return this.attempts.deleteOne({ _id: id });
  }

  forgetAttempts(key: string): Promise<unknown> {
    return this.attempts.deleteMany({ key });
  }

  /** Locks the key until `until` (setting the same values twice, as concurrent lockers do, is harmless). */
  async lock(key: string, until: Date, level: number, at: Date): Promise<void> {
    const set = () =>
      this.locks.updateOne(
        { _id: key },
        { $set: { locked_until: until, lock_level: level, updated_at: at } },
        { upsert: true },
      );
    try {
      await set();
    } catch (error) {
      // Two first locks racing to create the record: one insert loses; setting again updates it.
      if (error instanceof MongoServerError && error.code === 11000) await set();
      else throw error;
    }
  }

  /** Lifts a lock and forgets the failures (admin unlock). */
  async remove(key: string): Promise<void> {
    await Promise.all([this.locks.deleteOne({ _id: key }), this.attempts.deleteMany({ key })]);
  }

  /** Deletes attempts older than `before` and locks that ended before it; returns how many. */
  async deleteIdleBefore(before: Date): Promise<number> {
    const [attempts, locks] = await Promise.all([
      this.attempts.deleteMany({ at: { $lt: before } }),
      this.locks.deleteMany({
        updated_at: { $lt: before },
        $or: [{ locked_until: null }, { locked_until: { $lt: before } }],
      }),
    ]);
    return attempts.deletedCount + locks.deletedCount;
  }
}
