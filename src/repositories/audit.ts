// MongoDB access for the audit trail: an append-only collection whose records form a hash chain
// (services/audit.ts). Only inserts and reads here: nothing in the code base updates or deletes a record.
import type { Collection, Db, Filter, FindCursor } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export type AuditOutcome = 'success' | 'failure';

export interface AuditRecordDoc {
  _id: string;
  /** 1, 2, 3…: unique, so that two writers cannot both extend the chain from the same record. */
  seq: number;
  at: Date;
  action: string;
  actor_id: string | null;
  target_type: string | null;
  target_id: string | null;
  outcome: AuditOutcome;
  details: Record<string, unknown>;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  /** The hash of the record before (64 zeros for seq 1). */
  prev_hash: string;
  /** SHA-256 of the canonical JSON of every other field. */
  hash: string;
}

export interface AuditFilter {
  actorId?: string;
  /** Exact action. */
  action?: string;
  /** Actions that start with this text. */
  actionPrefix?: string;
  targetId?: string;
  /** At or after. */
  since?: Date;
  /** Before (exclusive). */
  until?: Date;
  /** Records with a lower seq (the paging cursor). */
  beforeSeq?: number;
}

export class AuditRepository {
  private readonly records: Collection<AuditRecordDoc>;

  constructor(db: Db) {
    this.records = db.collection<AuditRecordDoc>(COLLECTIONS.audit);
  }

  /** Refused with a duplicate-key error when another writer took this seq first. */
  insert(doc: AuditRecordDoc): Promise<unknown> {
    return this.records.insertOne(doc);
  }

  /** The record with the highest seq: the head of the chain. */
  head(): Promise<AuditRecordDoc | null> {
    return this.records.find({}).sort({ seq: -1 }).limit(1).next();
  }

  /** Newest first. */
  list(filter: AuditFilter, limit: number): Promise<AuditRecordDoc[]> {
    const query: Filter<AuditRecordDoc> = {};
    if (filter.actorId !== undefined) query.actor_id = filter.actorId;
    if (filter.targetId !== undefined) query.target_id = filter.targetId;
    if (filter.action !== undefined) query.action = filter.action;
    else if (filter.actionPrefix) {
      // A range rather than $regex, which is outside the portable subset. Actions are ASCII (the route
      // checks), so the prefix with its last character moved up one is the first string past the range.
      const prefix = filter.actionPrefix;
      const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
      query.action = { $gte: prefix, $lt: end };
    }
    if (filter.since || filter.until) {
      query.at = {
        ...(filter.since ? { $gte: filter.since } : {}),
        ...(filter.until ? { $lt: filter.until } : {}),
      };
    }
    if (filter.beforeSeq !== undefined) query.seq = { $lt: filter.beforeSeq };
    return this.records.find(query).sort({ seq: -1 }).limit(limit).toArray();
  }

  /**
   * Every record, oldest first, fetched `batchSize` at a time: one walk along the chain in bounded
   * memory. One cursor rather than a query per page, which on FerretDB would scan the collection again
   * for every page (it indexes only _id lookups).
   */
  chain(batchSize: number): FindCursor<AuditRecordDoc> {
    return this.records.find({}).sort({ seq: 1 }).batchSize(batchSize);
  }
}
