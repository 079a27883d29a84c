// What admins see of detection and what they may do: the security events, the bans in force, lifting a
// ban. Also the event writer the engine records through: security.log at once, the security_events
// collection in batches (a burst of attacks costs one insert per half second, not one per request).
import type { Logger } from 'pino';
import { assertCan, type Actor } from '../auth/permissions.js';
import { Errors } from '../errors.js';
import type { SecurityEventFilter, SecurityRepository } from '../repositories/security.js';
import type { DetectionEngine, SecurityEventRecord } from '../security/engine.js';
import type { Ban } from '../security/store.js';
import type { AuditService } from './audit.js';
import type { RequestContext } from './context.js';

/** Events waiting for the database beyond this are dropped (and counted): memory stays bounded. */
const MAX_PENDING_EVENTS = 10_000;
const BATCH = 500;

export interface SecurityServiceDeps {
  engine(): DetectionEngine;
  repository: SecurityRepository;
  audit: AuditService;
  log: Logger;
  /** The database can take writes (events wait in memory until it can). */
  databaseReady(): boolean;
  /** Tells the other instances (and this one's sockets) that a ban was lifted. */
  lifted(key: string): void;
}

export class SecurityService {
  private pending: SecurityEventRecord[] = [];
  private dropped = 0;
  private writing: Promise<void> | undefined;

  constructor(private readonly deps: SecurityServiceDeps) {}

  /** The engine's `record`: the log line now, the database row with the next flush. */
  record(event: SecurityEventRecord): void {
    const level = event.action === 'observe' ? 'info' : 'warn';
    this.deps.log[level]({ detection: event }, `security ${event.action}`);
    if (this.pending.length >= MAX_PENDING_EVENTS) {
      this.pending.shift();
      this.dropped += 1;
    }
    this.pending.push(event);
  }

  /** Writes the waiting events; called on a timer and at shutdown. */
  flush(): Promise<void> {
    this.writing ??= this.write().finally(() => (this.writing = undefined));
    return this.writing;
  }

  private async write(): Promise<void> {
    if (this.dropped > 0) {
      this.deps.log.warn({ dropped: this.dropped }, 'security events dropped while the database was away');
      this.dropped = 0;
    }
    while (this.pending.length > 0 && this.deps.databaseReady()) {
      const batch = this.pending.slice(0, BATCH);
      try {
        await this.deps.repository.insertEvents(batch);
      } catch (error) {
        // Kept for the next flush (a duplicate id means an earlier try half-succeeded: those are stored).
        if ((error as { code?: number }).code !== 11000) {
          this.deps.log.warn({ err: error }, 'security events not stored yet');
          return;
        }
      }
      this.pending = this.pending.slice(batch.length);
    }
  }

  async listEvents(actor: Actor, filter: SecurityEventFilter, limit: number) {
    assertCan(actor, 'security.read');
    await this.flush();
    const events = await this.deps.repository.findEvents(filter, limit + 1);
    const page = events.slice(0, limit);
    return {
      events: page,
      has_more: events.length > limit,
      next_before: events.length > limit ? page.at(-1)!._id : null,
    };
  }

  listBans(actor: Actor): Ban[] {
    assertCan(actor, 'security.read');
    return this.deps.engine().listBans();
  }

  /** Lifts a ban (`user:<id>` or `ip:<address>`): the principal starts again with no score and no offenses. */
  async lift(actor: Actor, key: string, context: RequestContext): Promise<void> {
    assertCan(actor, 'security.manage');
    const existed = await this.deps.engine().lift(key);
    if (!existed) throw new Errors.BLOCK_NOT_FOUND(key);
    this.deps.lifted(key);
    this.deps.audit.record(
      { action: 'security.unban', actor_id: actor.id, target_type: 'principal', target_id: key },
      context,
    );
  }

  /** Whether the user logged in from this address and agent before (see SecurityRepository). */
  rememberLogin(userId: string, ip: string, userAgent: string): Promise<'new' | 'known' | 'first'> {
    return this.deps.repository.rememberLoginContext(userId, ip, userAgent, new Date());
  }

  removeOldEvents(cutoff: Date): Promise<number> {
    return this.deps.repository.removeEventsBefore(cutoff);
  }

  /** The ban's audit record (placed by the engine, so the actor is the system). */
  banned(ban: Ban, event: SecurityEventRecord): void {
    this.deps.audit.record(
      {
        action: 'security.ban',
        actor_id: null,
        target_type: 'principal',
        target_id: ban.key,
        details: {
          until: new Date(ban.until).toISOString(),
          level: ban.level,
          rules: ban.rules,
          score: ban.score,
        },
      },
      { requestId: event.request_id ?? event.connection_id ?? 'detection', ip: event.ip, userAgent: null },
    );
  }
}
