// MongoDB access for detection: the security events (written in batches by the detection plugin) and
// the address + user agent pairs each user has logged in from (for the new-login-context rule).
import { createHash } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';
import type { SecurityEventRecord } from '../security/engine.js';

export interface LoginContextDoc {
  /** sha256("<user id>|<address>|<user agent>") */
  _id: string;
  user_id: string;
  first_seen: Date;
}

export interface SecurityEventFilter {
  principal?: string;
  action?: string;
  rule?: string;
  since?: Date;
  until?: Date;
  /** Events older than this event id (the previous page's last). */
  before?: string;
}

export class SecurityRepository {
  private readonly events: Collection<SecurityEventRecord>;
  private readonly loginContexts: Collection<LoginContextDoc>;

  constructor(db: Db) {
    this.events = db.collection(COLLECTIONS.securityEvents);
    this.loginContexts = db.collection(COLLECTIONS.loginContexts);
  }

  async insertEvents(events: SecurityEventRecord[]): Promise<void> {
    if (events.length > 0) await this.events.insertMany(events, { ordered: false });
  }

  /** Newest first; ids are ObjectId hex, so they order by time. */
  async findEvents(filter: SecurityEventFilter, limit: number): Promise<SecurityEventRecord[]> {
    const query: Filter<SecurityEventRecord> = {};
    if (filter.principal) query.principal = filter.principal;
    if (filter.action) query.action = filter.action as SecurityEventRecord['action'];
    if (filter.rule) query['rules.id'] = filter.rule as never;
    if (filter.since || filter.until)
      query.at = {
        ...(filter.since ? { $gte: filter.since } : {}),
        ...(filter.until ? { $lt: filter.until } : {}),
      };
    if (filter.before) query._id = { $lt: filter.before };
    return this.events.find(query).sort({ _id: -1 }).limit(limit).toArray();
  }

  /**
   * Remembers that the user logged in from this address and agent. Returns `new` when the pair was
   * never seen for a user who had logged in before (a first login ever is nothing unusual).
   */
  async rememberLoginContext(
    userId: string,
    ip: string,
    userAgent: string,
    now: Date,
  ): Promise<'new' | 'known' | 'first'> {
    const _id = createHash('sha256').update(`${userId}|${ip}|${userAgent}`).digest('hex');
    const result = await this.loginContexts.updateOne(
      { _id },
      { $setOnInsert: { user_id: userId, first_seen: now } },
      { upsert: true },
    );
    if (result.upsertedCount === 0) return 'known';
    const others = await this.loginContexts.countDocuments({ user_id: userId }, { limit: 2 });
    return others > 1 ? 'new' : 'first';
  }

  /** Removes events older than `cutoff` (the housekeeping sweep). */
  async removeEventsBefore(cutoff: Date): Promise<number> {
    const result = await this.events.deleteMany({ at: { $lt: cutoff } });
    return result.deletedCount;
  }
}
