// MongoDB access for login sessions. A session holds the hash of its current refresh token and of the last
// few before it (to recognise a replayed token), its idle and absolute expiry, and its revocation.
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export interface SessionDoc {
  _id: string;
  user_id: string;
  refresh_hash: string;
  /** Hashes of the tokens this session issued before the current one, newest first (bounded). */
  previous_refresh_hashes: string[];
  created_at: Date;
  last_used_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  ip: string | null;
  user_agent: string | null;
}

export class SessionsRepository {
  private readonly sessions: Collection<SessionDoc>;

  constructor(db: Db) {
    this.sessions = db.collection<SessionDoc>(COLLECTIONS.sessions);
  }

  insert(session: SessionDoc): Promise<unknown> {
    return this.sessions.insertOne(session);
  }

  findById(id: string): Promise<SessionDoc | null> {
    return this.sessions.findOne({ _id: id });
  }

  /** Swaps the refresh token only if it is still the current one (two racing refreshes: one wins). */
  rotate(session: SessionDoc, nextHash: string, keep: number, at: Date): Promise<SessionDoc | null> {
    const previous = [session.refresh_hash, ...session.previous_refresh_hashes].slice(0, keep);
    return this.sessions.findOneAndUpdate(
      { _id: session._id, refresh_hash: session.refresh_hash, revoked_at: null },
      { $set: { refresh_hash: nextHash, previous_refresh_hashes: previous, last_used_at: at } },
      { returnDocument: 'after' },
    );
  }

  /**
   * Moves the idle timer. The filter is the id alone: FerretDB uses its index only for exactly `{_id}`,
   * and with anything more each touch read every session while it held the write lock (in a reconnect
   * storm, a second each, with every send queued behind). Touching a session revoked meanwhile is harmless:
   * `revoked_at` still ends it.
   */
  touch(id: string, at: Date): Promise<unknown> {
    return this.sessions.updateOne({ _id: id }, { $set: { last_used_at: at } });
  }

  /** Deletes sessions that ended (revoked or expired) before `before`; returns how many. */
  async deleteEndedBefore(before: Date): Promise<number> {
    const result = await this.sessions.deleteMany({
      $or: [{ revoked_at: { $lt: before } }, { expires_at: { $lt: before } }],
    });
    return result.deletedCount;
  }

  revoke(id: string, reason: string, at: Date): Promise<SessionDoc | null> {
    return this.sessions.findOneAndUpdate(
      { _id: id, revoked_at: null },
      { $set: { revoked_at: at, revoked_reason: reason } },
      { returnDocument: 'after' },
    );
  }

  /** How many sessions of the user are neither revoked nor expired at `now`. */
  countOpen(userId: string, now: Date): Promise<number> {
    return this.sessions.countDocuments({ user_id: userId, revoked_at: null, expires_at: { $gt: now } });
  }

  /** The ids of a user's open sessions, except `keep`. */
  async openIdsOfUser(userId: string, keep?: string): Promise<string[]> {
    const filter = { user_id: userId, revoked_at: null, ...(keep ? { _id: { $ne: keep } } : {}) };
    const open = await this.sessions.find(filter, { projection: { _id: 1 } }).toArray();
    return open.map((s) => s._id);
  }
}
