// Company-wide announcements. Admins create them (at once, or scheduled), list and delete them;
// everyone reads the published ones. Publishing sends `new_announcement` to everyone, exactly once even
// with several server processes (a one-time claim per announcement), and a scheduled announcement goes
// out when due — also when it fell due while the server was down (the check runs at start-up).
import { assertCan, can, type Actor } from '../auth/permissions.js';
import type { Config } from '../config/index.js';
import { Errors, invalidCursor, validationError } from '../errors.js';
import { isId, newId } from '../lib/ids.js';
import { pageOf } from '../lib/paging.js';
import { formatOptionalTimestamp, formatTimestamp } from '../lib/time.js';
import type {
  AnnouncementDoc,
  AnnouncementPriority,
  AnnouncementsRepository,
} from '../repositories/announcements.js';
import type { ClaimsRepository } from '../repositories/claims.js';
import type { AuditService } from './audit.js';
import type { RequestContext } from './context.js';
import type { EventPublisher } from './events.js';

const MAX_SCHEDULE_AHEAD_MS = 366 * 86_400_000;
/**
 * An announcement published at once is left to its own request this long (longer than any request may
 * take) before the scheduler publishes it in the request's place. Due at once, the scheduler sometimes
 * claimed it between the insert and the request's own claim, and the request answered `published: false`.
 */
const PUBLISH_FALLBACK_MS = 60_000;

export interface PublicAnnouncement {
  id: string;
  title: string;
  content: string;
  priority: AnnouncementPriority;
  created_by: string;
  created_at: string;
  scheduled_at: string | null;
  published_at: string | null;
  published: boolean;
}

export interface NewAnnouncement {
  title: string;
  content: string;
  priority?: AnnouncementPriority;
  scheduled_at?: Date | null;
}

export class AnnouncementsService {
  constructor(
    private readonly deps: {
      announcements: AnnouncementsRepository;
      claims: ClaimsRepository;
      audit: AuditService;
      events: EventPublisher;
      config: Config;
      now?: () => Date;
    },
  ) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  toPublic(doc: AnnouncementDoc): PublicAnnouncement {
    const tz = this.deps.config.server.timezone;
    return {
      id: doc._id,
      title: doc.title,
      content: doc.content,
      priority: doc.priority,
      created_by: doc.created_by,
      created_at: formatTimestamp(doc.created_at, tz),
      scheduled_at: formatOptionalTimestamp(doc.scheduled_at, tz),
      published_at: formatOptionalTimestamp(doc.published_at, tz),
      published: doc.published_at !== null,
    };
  }

  async create(actor: Actor, input: NewAnnouncement, context: RequestContext): Promise<PublicAnnouncement> {
    assertCan(actor, 'announcement.manage');
    const now = this.now();
    const scheduledAt = input.scheduled_at ?? null;
    // A time in the past (or none) means now.
    const publishNow = !scheduledAt || scheduledAt.getTime() <= now.getTime();
    if (scheduledAt && scheduledAt.getTime() - now.getTime() > MAX_SCHEDULE_AHEAD_MS) {
      throw validationError('scheduled_at is too far ahead', [
        { path: 'scheduled_at', message: 'must be within a year from now' },
      ]);
    }
    const doc: AnnouncementDoc = {
      _id: newId(),
      title: input.title,
      content: input.content,
      priority: input.priority ?? 'medium',
      created_by: actor.id,
      created_at: now,
      scheduled_at: scheduledAt,
      // Set for "now" too, so that the scheduler publishes it if this request fails midway.
      due_at: publishNow ? new Date(now.getTime() + PUBLISH_FALLBACK_MS) : scheduledAt,
      published_at: null,
      deleted_at: null,
    };
    await this.deps.announcements.insert(doc);
    this.deps.audit.record(
      {
        action: 'announcement.create',
        actor_id: actor.id,
        target_type: 'announcement',
        target_id: doc._id,
        details: { priority: doc.priority, scheduled_at: scheduledAt?.toISOString() ?? null },
      },
      context,
    );
    if (publishNow) return this.toPublic((await this.publish(doc)).doc);
    return this.toPublic(doc);
  }

  /** Published announcements, newest first; admins also see scheduled ones. */
  async list(
    actor: Actor,
    query: { cursor?: string; limit: number },
  ): Promise<{ announcements: PublicAnnouncement[]; next_cursor: string | null; has_more: boolean }> {
    if (query.cursor !== undefined && !isId(query.cursor)) {
      throw invalidCursor();
    }
    const page = await this.deps.announcements.list({
      includeScheduled: can(actor, 'announcement.manage'),
      beforeId: query.cursor,
      limit: query.limit + 1,
    });
    const { rows, ...paging } = pageOf(page, query.limit, (last) => last._id);
    return { announcements: rows.map((doc) => this.toPublic(doc)), ...paging };
  }

  async remove(actor: Actor, id: string, context: RequestContext): Promise<void> {
    assertCan(actor, 'announcement.manage');
    const deleted = isId(id) ? await this.deps.announcements.markDeleted(id, this.now()) : null;
    if (!deleted) throw new Errors.ANNOUNCEMENT_NOT_FOUND();
    this.deps.audit.record(
      { action: 'announcement.delete', actor_id: actor.id, target_type: 'announcement', target_id: id },
      context,
    );
  }

  /** Publishes every scheduled announcement that is due; returns how many this process published. */
  async publishDue(): Promise<number> {
    let published = 0;
    for (const doc of await this.deps.announcements.due(this.now(), 100)) {
      if ((await this.publish(doc)).published) published += 1;
    }
    return published;
  }

  /** Marks published and tells everyone, once: only the process that claims the announcement does it. */
  private async publish(doc: AnnouncementDoc): Promise<{ doc: AnnouncementDoc; published: boolean }> {
    const now = this.now();
    if (!(await this.deps.claims.claim(`announcement:${doc._id}`, now))) return { doc, published: false };
    const published = (await this.deps.announcements.markPublished(doc._id, now)) ?? {
      ...doc,
      published_at: now,
    };
    this.deps.events.publish(
      { type: 'new_announcement', data: this.toPublic(published) },
      { kind: 'everyone' },
    );
    return { doc: published, published: true };
  }
}
