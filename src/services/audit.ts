// The one way to record an audit event, and the tamper-evident trail behind it. Each event becomes a
// record in the append-only `audit` collection, numbered 1, 2, 3… (`seq`) and chained: a record carries
// the hash of the one before (`prev_hash`) and its own `hash`, SHA-256 over its canonical JSON
// (lib/canonical-json.ts). Editing, removing or reordering a stored record breaks the chain, and
// `verify` says where. Each stored record is mirrored to logs/audit.log with its seq and hash, so the
// log also shows what a truncated tail held.
//
// `record` returns at once (many services call it on their hot paths): the event joins a queue that
// this process writes one record at a time, keeping the chain's head in memory. Other processes on the
// same database append too; the unique index on seq makes the database the referee (a writer that lost
// the race reads the head again and retries). Events recorded before the database is ready wait for it.
// An event that cannot be stored is written to audit.log as not stored, with the whole event.
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { assertCan, type Actor } from '../auth/permissions.js';
import { isDatabaseUnavailable, isDuplicateKey } from '../db/errors.js';
import { canonicalJson } from '../lib/canonical-json.js';
import { sha256 } from '../lib/crypto.js';
import { newId } from '../lib/ids.js';
import { pageOf } from '../lib/paging.js';
import { formatTimestamp } from '../lib/time.js';
import type { AuditFilter, AuditOutcome, AuditRecordDoc, AuditRepository } from '../repositories/audit.js';
import { NO_REQUEST, type RequestContext } from './context.js';

export interface AuditEvent {
  action: string;
  actor_id: string | null;
  target_type?: string;
  target_id?: string | null;
  details?: Record<string, unknown>;
  outcome?: AuditOutcome;
}

/** prev_hash of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** How many times a writer that lost the race for a seq tries again before it gives up on a record. */
const MAX_SEQ_CONFLICTS = 50;
/** Records fetched at a time while verifying: memory stays bounded however long the chain is. */
const VERIFY_BATCH_SIZE = 500;
/** While the database is down, how often the writer looks whether it is back. */
const OUTAGE_POLL_MS = 250;
/** Events held in memory while the database is away; beyond this they are logged as not stored. */
const MAX_QUEUED = 10_000;

export type AuditBreakReason = 'hash_mismatch' | 'prev_hash_mismatch' | 'missing_record';

export type AuditVerification =
  | { ok: true; checked: number }
  | {
      ok: false;
      checked: number;
      /** The first record where the chain breaks (id null when the record is missing). */
      broken_at: { seq: number; id: string | null; reason: AuditBreakReason };
    };

/** A record as the API shows it: `id` for `_id`, and `at` as an RFC 3339 string in server.timezone. */
export type PublicAuditRecord = Omit<AuditRecordDoc, '_id' | 'at'> & { id: string; at: string };

export interface AuditListQuery {
  /** A user id or email, or a non-user actor such as "system" or "cli". */
  actor?: string;
  /** Exact, or a prefix ending in "*" (`user.*`). */
  action?: string;
  target?: string;
  since?: Date;
  until?: Date;
  /** Only records with a lower seq (`next_before` of the previous page). */
  before?: number;
  limit: number;
}

export interface AuditPage {
  records: PublicAuditRecord[];
  has_more: boolean;
  next_before: number | null;
}

/** What the trail needs to know about the database: when it is ready, and whether it is up now. */
export interface AuditDatabase {
  whenReady(): Promise<void>;
  readonly isReady: boolean;
  readonly isUp: boolean;
  markUnavailable(error: unknown): void;
}

/** A record as it waits in the queue: everything but its place in the chain. */
type PendingRecord = Omit<AuditRecordDoc, 'seq' | 'prev_hash' | 'hash'>;

interface Head {
  seq: number;
  hash: string;
}

/** The hash a record must carry: over every field but `hash` itself. */
export function auditHash(record: Omit<AuditRecordDoc, 'hash'> | AuditRecordDoc): string {
  const { hash: _hash, ...rest } = record as AuditRecordDoc;
  return sha256(canonicalJson(rest));
}

// NUL and lone surrogates do not survive a round trip through the database (BSON stores UTF-8 strings),
// and a value that reads back different would no longer match its hash.
const UNSTORABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function storable(text: string): string {
  return text.replace(UNSTORABLE, '\ufffd');
}

function storableOrNull(text: string | null | undefined): string | null {
  return text === undefined || text === null ? null : storable(String(text));
}

/**
 * The details as plain JSON values: what reads back from the database exactly as it was written (Dates
 * become ISO strings, undefined fields go, bigints become strings). Never throws: a caller's odd value
 * must not lose the event.
 */
function storableDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!details) return {};
  try {
    const json = JSON.stringify(details, (_key, value: unknown) => {
      if (typeof value === 'string') return storable(value);
      if (typeof value === 'bigint') return value.toString();
      return value;
    });
    return cleanKeys(JSON.parse(json)) as Record<string, unknown>;
  } catch {
    return { unserializable: true };
  }
}

function cleanKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cleanKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, field]) => [storable(key), cleanKeys(field)]),
  );
}

export class AuditService {
  /** The last record of the chain as this process knows it; undefined: read it from the database. */
  private head: Head | undefined;
  /** The highest seq this process has seen stored: a tail removed after it is noticed by `verify`. */
  private highestStored = 0;
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private closing = false;
  private readonly closed: Promise<void>;
  private signalClosed!: () => void;

  constructor(
    private readonly deps: {
      repository: AuditRepository;
      database: AuditDatabase;
      /** logs/audit.log: the mirror of each stored record, and events that could not be stored. */
      mirror: Logger;
      /** The main log, for the operators: an audit record that could not be stored. */
      log: FastifyBaseLogger;
      timezone: string;
      /** Resolves an email given as `actor` to the user's id. */
      findUserId?: (email: string) => Promise<string | null>;
      now?: () => Date;
      /** Records fetched at a time by `verify` (default VERIFY_BATCH_SIZE). */
      verifyBatchSize?: number;
    },
  ) {
    this.closed = new Promise((resolve) => (this.signalClosed = resolve));
  }

  /**
   * Queues an event for the trail and returns at once. `context` is the request it came from (the
   * server's own work passes nothing).
   */
  record(event: AuditEvent, context: RequestContext = NO_REQUEST): void {
    const pending: PendingRecord = {
      _id: newId(),
      at: this.deps.now?.() ?? new Date(),
      action: storable(event.action),
      actor_id: storableOrNull(event.actor_id),
      target_type: storableOrNull(event.target_type),
      target_id: storableOrNull(event.target_id),
      outcome: event.outcome ?? 'success',
      details: storableDetails(event.details),
      request_id: storableOrNull(context.requestId),
      ip: storableOrNull(context.ip),
      user_agent: storableOrNull(context.userAgent),
    };
    if (this.queued >= MAX_QUEUED) {
      this.notStored(pending, new Error(`more than ${MAX_QUEUED} audit records waiting for the database`));
      return;
    }
    this.queued += 1;
    // Never rejects, so one failed event cannot hold up or fail the ones queued after it.
    const task = async () => {
      try {
        await this.store(pending);
      } catch (error) {
        this.notStored(pending, error);
      } finally {
        this.queued -= 1;
      }
    };
    this.tail = this.tail.then(task, task);
  }

  /** Resolves once every event recorded so far is stored (or logged as not stored). */
  async flush(): Promise<void> {
    while (this.queued > 0) await this.tail;
  }

  /**
   * For shutdown, before the database closes: writes what is queued, without waiting for a database
   * that is not there (those events go to audit.log as not stored).
   */
  async close(): Promise<void> {
    this.closing = true;
    this.signalClosed();
    await this.flush();
  }

  // ---- reading ----

  /** Newest first, filtered; `before` pages back by seq. */
  async list(actor: Actor, query: AuditListQuery): Promise<AuditPage> {
    assertCan(actor, 'audit.read');
    const filter: AuditFilter = { since: query.since, until: query.until, beforeSeq: query.before };
    if (query.actor !== undefined) {
      filter.actorId = query.actor.includes('@')
        ? ((await this.deps.findUserId?.(query.actor)) ?? query.actor)
        : query.actor;
    }
    if (query.target !== undefined) filter.targetId = query.target;
    if (query.action !== undefined) {
      if (query.action.endsWith('*')) {
        const prefix = query.action.slice(0, -1);
        if (prefix) filter.actionPrefix = prefix;
      } else filter.action = query.action;
    }
    const fetched = await this.deps.repository.list(filter, query.limit + 1);
    const { rows, has_more: hasMore } = pageOf(fetched, query.limit, (last) => String(last.seq));
    return {
      records: rows.map((doc) => this.toPublic(doc)),
      has_more: hasMore,
      next_before: hasMore ? rows.at(-1)!.seq : null,
    };
  }

  /**
   * Walks the whole chain in seq order, a batch at a time, recomputing each hash and checking that each
   * record follows the one before. Stops at the first break.
   */
  async verify(actor: Actor): Promise<AuditVerification> {
    assertCan(actor, 'audit.read');
    // Records this process stored before the walk began must all be found (a removed tail has no
    // successor whose prev_hash would give it away).
    const known = this.highestStored;
    let previous: Head = { seq: 0, hash: GENESIS_HASH };
    let checked = 0;
    const cursor = this.deps.repository.chain(this.deps.verifyBatchSize ?? VERIFY_BATCH_SIZE);
    try {
      for await (const doc of cursor) {
        const broken = (reason: AuditBreakReason, seq = doc.seq, id: string | null = doc._id) =>
          ({ ok: false, checked, broken_at: { seq, id, reason } }) as const;
        if (doc.seq !== previous.seq + 1) return broken('missing_record', previous.seq + 1, null);
        if (auditHash(doc) !== doc.hash) return broken('hash_mismatch');
        if (doc.prev_hash !== previous.hash) return broken('prev_hash_mismatch');
        checked += 1;
        previous = { seq: doc.seq, hash: doc.hash };
      }
    } finally {
      await cursor.close();
    }
    if (known > previous.seq) {
      return { ok: false, checked, broken_at: { seq: previous.seq + 1, id: null, reason: 'missing_record' } };
    }
    return { ok: true, checked };
  }

  toPublic(doc: AuditRecordDoc): PublicAuditRecord {
    const { _id: id, at, ...fields } = doc;
    return { id, ...fields, at: formatTimestamp(at, this.deps.timezone) };
  }

  // ---- writing (one record at a time, in the queue) ----

  private async store(pending: PendingRecord): Promise<void> {
    const { repository, database } = this.deps;
    if (!database.isReady && !(await this.untilClosed(database.whenReady()))) {
      throw new Error('the database was not ready before shutdown');
    }
    let conflicts = 0;
    for (;;) {
      // During an outage the queue waits for the database instead of failing every event in turn.
      while (!database.isUp) {
        if (this.closing) throw new Error('the database is unavailable at shutdown');
        await this.untilClosed(delay(OUTAGE_POLL_MS));
      }
      let doc: AuditRecordDoc | undefined;
      try {
        this.head ??= await this.readHead();
        doc = this.seal(pending, this.head);
        await repository.insert(doc);
        this.stored(doc);
        return;
      } catch (error) {
        // Whatever went wrong, the head in memory may be stale now: read it again before the next try.
        this.head = undefined;
        if (doc && isDuplicateKey(error)) {
          // A write that reached the database although its answer was lost, then retried by the driver,
          // conflicts with itself: it is stored.
          const current = await repository.head();
          if (current?._id === doc._id) {
            this.stored(current);
            return;
          }
          if (current) this.head = { seq: current.seq, hash: current.hash };
          conflicts += 1;
          if (conflicts > MAX_SEQ_CONFLICTS) throw error;
          // Another process took this seq: back off a little (with jitter, so that two busy writers
          // do not keep colliding) and extend the chain from the new head.
          await delay(Math.random() * Math.min(100, 2 ** conflicts));
          continue;
        }
        if (isDatabaseUnavailable(error) && !this.closing) {
          database.markUnavailable(error);
          await this.untilClosed(delay(OUTAGE_POLL_MS));
          continue;
        }
        throw error;
      }
    }
  }

  private async readHead(): Promise<Head> {
    const head = await this.deps.repository.head();
    if (!head) return { seq: 0, hash: GENESIS_HASH };
    this.highestStored = Math.max(this.highestStored, head.seq);
    return { seq: head.seq, hash: head.hash };
  }

  private seal(pending: PendingRecord, head: Head): AuditRecordDoc {
    const unsealed = { ...pending, seq: head.seq + 1, prev_hash: head.hash };
    return { ...unsealed, hash: auditHash(unsealed) };
  }

  private stored(doc: AuditRecordDoc): void {
    this.head = { seq: doc.seq, hash: doc.hash };
    this.highestStored = Math.max(this.highestStored, doc.seq);
    // The mirror line carries the record as stored (UTC time), with the request's fields beside it.
    const { _id: id, at, request_id, ip, user_agent, ...fields } = doc;
    this.deps.mirror.info(
      { audit: { id, ...fields, at: at.toISOString() }, request_id, ip, user_agent },
      doc.action,
    );
  }

  /** The event is not in the trail: it goes to audit.log whole, and the operators are told. */
  private notStored(pending: PendingRecord, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    try {
      this.writeNotStored(pending, error, reason);
    } catch {
      // A logger that throws must not take the queue down with it.
    }
  }

  private writeNotStored(pending: PendingRecord, error: unknown, reason: string): void {
    this.deps.mirror.error(
      {
        audit: {
          id: pending._id,
          at: pending.at.toISOString(),
          action: pending.action,
          actor_id: pending.actor_id,
          target_type: pending.target_type,
          target_id: pending.target_id,
          outcome: pending.outcome,
          details: pending.details,
        },
        request_id: pending.request_id,
        ip: pending.ip,
        user_agent: pending.user_agent,
        stored: false,
        reason,
      },
      'audit record not stored',
    );
    this.deps.log.error(
      { err: error, action: pending.action, audit_id: pending._id, request_id: pending.request_id },
      'audit record not stored',
    );
  }

  /** Waits for `promise`, or for shutdown; true when the promise won. */
  private async untilClosed(promise: Promise<unknown>): Promise<boolean> {
    if (this.closing) return false;
    return Promise.race([promise.then(() => true), this.closed.then(() => false)]);
  }
}
