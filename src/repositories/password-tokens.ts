// One-time set-password tokens (stored by hash) for accounts created without a password.
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export interface PasswordTokenDoc {
  _id: string; // sha256 of the token
  user_id: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
}

export class PasswordTokensRepository {
  private readonly tokens: Collection<PasswordTokenDoc>;

  constructor(db: Db) {
    this.tokens = db.collection<PasswordTokenDoc>(COLLECTIONS.passwordTokens);
  }

  insert(token: PasswordTokenDoc): Promise<unknown> {
    return this.tokens.insertOne(token);
  }

  /** The token if it is unused and unexpired. */
  findUsable(hash: string, at: Date): Promise<PasswordTokenDoc | null> {
    return this.tokens.findOne({ _id: hash, used_at: null, expires_at: { $gt: at } });
  }

  markUsed(hash: string, at: Date): Promise<unknown> {
    return this.tokens.updateOne({ _id: hash }, { $set: { used_at: at } });
  }

  /** Voids every unused token of a user (their password changed, or they were disabled). */
  voidForUser(userId: string, at: Date): Promise<unknown> {
    return this.tokens.updateMany({ user_id: userId, used_at: null }, { $set: { used_at: at } });
  }

  /** Deletes tokens that expired, or were used before `usedBefore`; returns how many. */
  async deleteSpent(now: Date, usedBefore: Date): Promise<number> {
    const result = await this.tokens.deleteMany({
      $or: [{ expires_at: { $lt: now } }, { used_at: { $lt: usedBefore } }],
    });
    return result.deletedCount;
  }
}
