// One-time claims: the first insert of an id wins; everyone else gets false. On FerretDB (SQLite) a
// conditional update is not isolated — two concurrent "set used if unused" updates can both succeed, and
// concurrent $inc lose updates — but a unique-key insert is. Every "exactly once" in this server rests on
// this (one-time tokens, refresh-token rotation).
import { MongoServerError, type Collection, type Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

interface ClaimDoc {
  _id: string;
  at: Date;
}

export class ClaimsRepository {
  private readonly claims: Collection<ClaimDoc>;

  constructor(db: Db) {
    this.claims = db.collection<ClaimDoc>(COLLECTIONS.claims);
  }

  /** True for the one caller that claims `id` first. */
  async claim(id: string, at: Date): Promise<boolean> {
    try {
      await this.claims.insertOne({ _id: id, at });
      return true;
    } catch (error) {
      if (error instanceof MongoServerError && error.code === 11000) return false;
      throw error;
    }
  }

  /** Gives a claim back (the work it guarded failed, so someone may claim it again). */
  async release(id: string): Promise<void> {
    await this.claims.deleteOne({ _id: id });
  }

  /** Deletes claims made before `before` (what they guarded has expired by then); returns how many. */
  async deleteBefore(before: Date): Promise<number> {
    return (await this.claims.deleteMany({ at: { $lt: before } })).deletedCount;
  }
}
