// Analytics for administrators: counters kept in memory as things happen, written every few seconds as
// `$inc` upserts into minute, hour and day buckets at once (so nothing on a request's path waits on the
// database, and roll-ups need no separate job), read back over a time range and summed across instances.
// Old buckets are removed by granularity: minutes after 2 days, hours after 30, days after
// ANALYTICS_RETENTION_DAYS.
//
// Series: `errors` (error responses by code and route, with first and last sighting and a sample request
// id), `connections` (sockets opened and closed, total open time, the most open at once) and `activity`
// (messages by channel kind and by channel, uploads and their bytes). Who was active each day (senders
// and connectors) is kept as sets of user ids, one document per day and instance.
import { assertCan, type Actor } from '../auth/permissions.js';
import {
  fromFieldKey,
  type AnalyticsRepository,
  type BucketChange,
  type ErrorGroupDoc,
  type Granularity,
} from '../repositories/analytics.js';

export const GRANULARITY_MS: Readonly<Record<Granularity, number>> = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};
const DAY_MS = GRANULARITY_MS.day;
/** How far back each granularity is kept (days are kept as configured). */
const KEEP_MS = { minute: 2 * DAY_MS, hour: 30 * DAY_MS };
/** Pending changes beyond this many buckets are dropped while the database is away (memory stays bounded). */
const MAX_PENDING = 10_000;
const TOP_CHANNELS = 10;

export interface ErrorGroup {
  code: string;
  route: string;
  count: number;
  first_seen: string | null;
  last_seen: string | null;
  sample_request_id: string | null;
}

export interface ErrorsReport {
  from: string;
  to: string;
  bucket: Granularity;
  series: { start: string; count: number }[];
  groups: ErrorGroup[];
}

export interface ActivityReport {
  from: string;
  to: string;
  bucket: Granularity;
  series: {
    start: string;
    /** By channel kind: direct, group, department, public. */
    messages: Record<string, number>;
    uploads: number;
    upload_bytes: number;
  }[];
  /** The channels with the most messages over the range, most first (at most 10). */
  top_channels: { channel_id: string; messages: number }[];
  active_users: {
    /** Distinct users per day: who sent, who connected, either. */
    daily: { day: string; senders: number; connectors: number; users: number }[];
    /** Distinct users over the 7 days up to `to`. */
    weekly: { from: string; to: string; users: number };
  };
}

export interface UserActivity {
  user_id: string;
  name: string | null;
  email: string | null;
  last_seen_at: string | null;
  /** Messages sent in the range (by whole days). */
  messages_sent: number;
  /** Sessions open now. */
  open_sessions: number;
}

export interface ConnectionsReport {
  from: string;
  to: string;
  bucket: Granularity;
  /** Sockets open on this instance now. */
  current: number;
  series: { start: string; opened: number; closed: number; peak: number; average_session_s: number | null }[];
}

/** Counts to add and peaks to raise, as pairs (what is recorded) or maps (a pending bucket). */
interface Change {
  counts?: Iterable<[string, number]>;
  peaks?: Iterable<[string, number]>;
}

function bucketStart(at: Date, granularity: Granularity): Date {
  const size = GRANULARITY_MS[granularity];
  return new Date(Math.floor(at.getTime() / size) * size);
}

export class AnalyticsService {
  private pending = new Map<string, BucketChange>();
  private pendingGroups = new Map<string, ErrorGroupDoc>();
  /** Users active per day (by the day's start in ms), not yet written. */
  private pendingActive = new Map<number, { senders: Set<string>; connectors: Set<string> }>();

  constructor(
    private readonly deps: {
      analytics: AnalyticsRepository;
      instance: string;
      retentionDays: number;
      currentSockets(): number;
      /** Names, last sighting and open sessions of users, for the per-user report. */
      people?: {
        users: {
          findByIds(
            ids: readonly string[],
          ): Promise<{ _id: string; name: string; email: string; last_seen_at: Date | null }[]>;
        };
        sessions: { countOpen(userId: string, now: Date): Promise<number> };
      };
      now?: () => Date;
    },
  ) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  // ---- recording (in memory; no database on the caller's path) ----

  recordError(code: string, route: string, requestId: string): void {
    const at = this.now();
    const key = `${code} ${route}`;
    this.add('errors', at, { counts: [[key, 1]] });
    const group = this.pendingGroups.get(key);
    if (group) {
      group.last_seen = at;
      group.sample_request_id = requestId;
    } else if (this.pendingGroups.size < MAX_PENDING) {
      this.pendingGroups.set(key, {
        _id: key,
        code,
        route,
        first_seen: at,
        last_seen: at,
        sample_request_id: requestId,
      });
    }
  }

  connectionOpened(openSockets: number, userId?: string): void {
    const at = this.now();
    this.add('connections', at, { counts: [['opened', 1]], peaks: [['sockets', openSockets]] });
    if (userId) this.activeOn(at).connectors.add(userId);
  }

  recordMessage(channelKind: string, channelId: string, senderId: string): void {
    const at = this.now();
    this.add('activity', at, {
      counts: [
        [`messages ${channelKind}`, 1],
        [`channel ${channelId}`, 1],
      ],
    });
    this.activeOn(at).senders.add(senderId);
    // Per sender, by day only: minute buckets of every sender would be many documents for little use.
    this.merge('senders', 'day', bucketStart(at, 'day'), { counts: [[senderId, 1]] });
  }

  recordUpload(bytes: number): void {
    this.add('activity', this.now(), {
      counts: [
        ['uploads', 1],
        ['upload_bytes', bytes],
      ],
    });
  }

  private activeOn(at: Date): { senders: Set<string>; connectors: Set<string> } {
    const day = bucketStart(at, 'day').getTime();
    let users = this.pendingActive.get(day);
    if (!users) {
      users = { senders: new Set(), connectors: new Set() };
      this.pendingActive.set(day, users);
    }
    return users;
  }

  connectionClosed(durationMs: number): void {
    this.add('connections', this.now(), {
      counts: [
        ['closed', 1],
        ['session_ms', durationMs],
      ],
    });
  }

  /** Adds a change at `at` to its minute, hour and day buckets. */
  private add(series: string, at: Date, change: Change): void {
    for (const granularity of ['minute', 'hour', 'day'] as const) {
      this.merge(series, granularity, bucketStart(at, granularity), change);
    }
  }

  /** Merges a change into the pending one of the same bucket (dropped past MAX_PENDING buckets). */
  private merge(series: string, granularity: Granularity, start: Date, change: Change): void {
    const id = `${series}|${granularity}|${start.getTime()}`;
    let bucket = this.pending.get(id);
    if (!bucket) {
      if (this.pending.size >= MAX_PENDING) return;
      bucket = { series, granularity, start, counts: new Map(), peaks: new Map() };
      this.pending.set(id, bucket);
    }
    for (const [name, value] of change.counts ?? [])
      bucket.counts.set(name, (bucket.counts.get(name) ?? 0) + value);
    for (const [name, value] of change.peaks ?? [])
      bucket.peaks.set(name, Math.max(bucket.peaks.get(name) ?? 0, value));
  }

  /**
   * Writes what was recorded since the last flush. What could not be written is kept for the next one
   * (merged with what arrived meanwhile), so an outage loses nothing it does not have to.
   */
  async flush(): Promise<void> {
    const buckets = this.pending;
    const groups = this.pendingGroups;
    this.pending = new Map();
    this.pendingGroups = new Map();
    const failed: BucketChange[] = [];
    for (const bucket of buckets.values()) {
      try {
        await this.deps.analytics.addToBucket(bucket, this.deps.instance);
      } catch {
        failed.push(bucket);
      }
    }
    // Back into the same buckets (not through add(): that would count them again at every granularity).
    for (const bucket of failed) this.merge(bucket.series, bucket.granularity, bucket.start, bucket);
    for (const group of groups.values()) {
      try {
        await this.deps.analytics.noteErrorGroup(group);
      } catch {
        const newer = this.pendingGroups.get(group._id);
        if (newer)
          newer.first_seen = group.first_seen; // the failed batch came first
        else this.pendingGroups.set(group._id, group);
      }
    }
    const active = this.pendingActive;
    this.pendingActive = new Map();
    for (const [day, users] of active) {
      try {
        await this.deps.analytics.addActiveUsers(new Date(day), this.deps.instance, {
          senders: [...users.senders],
          connectors: [...users.connectors],
        });
      } catch {
        const kept = this.activeOn(new Date(day));
        for (const id of users.senders) kept.senders.add(id);
        for (const id of users.connectors) kept.connectors.add(id);
      }
    }
    if (failed.length)
      throw new Error(`${failed.length} analytics buckets not written; kept for the next flush`);
  }

  /** Removes buckets older than their granularity is kept; returns how many. */
  async sweep(): Promise<number> {
    const now = this.now().getTime();
    return (
      (await this.deps.analytics.deleteBucketsBefore('minute', new Date(now - KEEP_MS.minute))) +
      (await this.deps.analytics.deleteBucketsBefore('hour', new Date(now - KEEP_MS.hour))) +
      (await this.deps.analytics.deleteBucketsBefore(
        'day',
        new Date(now - this.deps.retentionDays * DAY_MS),
      )) +
      (await this.deps.analytics.deleteActiveUsersBefore(new Date(now - this.deps.retentionDays * DAY_MS)))
    );
  }

  // ---- reading (administrators) ----

  async errors(actor: Actor, range: { from: Date; to: Date; bucket: Granularity }): Promise<ErrorsReport> {
    const buckets = await this.bucketsIn(actor, 'errors', range);
    const perStart = new Map<number, number>();
    const perGroup = new Map<string, number>();
    for (const bucket of buckets) {
      for (const [key, count] of Object.entries(bucket.counts)) {
        const group = fromFieldKey(key);
        perStart.set(bucket.start.getTime(), (perStart.get(bucket.start.getTime()) ?? 0) + count);
        perGroup.set(group, (perGroup.get(group) ?? 0) + count);
      }
    }
    const known = new Map(
      (await this.deps.analytics.errorGroups([...perGroup.keys()])).map((g) => [g._id, g]),
    );
    const groups = [...perGroup]
      .map(([key, count]) => {
        const group = known.get(key);
        const [code, ...route] = key.split(' ');
        return {
          code: group?.code ?? code!,
          route: group?.route ?? route.join(' '),
          count,
          first_seen: group?.first_seen.toISOString() ?? null,
          last_seen: group?.last_seen.toISOString() ?? null,
          sample_request_id: group?.sample_request_id ?? null,
        };
      })
      .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
    return {
      ...describe(range),
      series: [...perStart]
        .sort(([a], [b]) => a - b)
        .map(([start, count]) => ({ start: new Date(start).toISOString(), count })),
      groups,
    };
  }

  /** The buckets of a series over a range, its start moved back to a bucket boundary (admins only). */
  private bucketsIn(actor: Actor, series: string, range: { from: Date; to: Date; bucket: Granularity }) {
    assertCan(actor, 'analytics.read');
    return this.deps.analytics.bucketsBetween(
      series,
      range.bucket,
      bucketStart(range.from, range.bucket),
      range.to,
    );
  }

  async activity(
    actor: Actor,
    range: { from: Date; to: Date; bucket: Granularity },
  ): Promise<ActivityReport> {
    const buckets = await this.bucketsIn(actor, 'activity', range);
    const perStart = new Map<number, ActivityReport['series'][number]>();
    const perChannel = new Map<string, number>();
    for (const bucket of buckets) {
      const start = bucket.start.getTime();
      let row = perStart.get(start);
      if (!row) {
        row = { start: bucket.start.toISOString(), messages: {}, uploads: 0, upload_bytes: 0 };
        perStart.set(start, row);
      }
      for (const [key, count] of Object.entries(bucket.counts)) {
        const [kind, name] = splitCounter(fromFieldKey(key));
        if (kind === 'messages') row.messages[name] = (row.messages[name] ?? 0) + count;
        else if (kind === 'channel') perChannel.set(name, (perChannel.get(name) ?? 0) + count);
        else if (kind === 'uploads') row.uploads += count;
        else if (kind === 'upload_bytes') row.upload_bytes += count;
      }
    }
    const weekFrom = new Date(bucketStart(range.to, 'day').getTime() - 6 * DAY_MS);
    const days = await this.deps.analytics.activeUsersBetween(
      new Date(Math.min(bucketStart(range.from, 'day').getTime(), weekFrom.getTime())),
      range.to,
    );
    const perDay = new Map<number, { senders: Set<string>; connectors: Set<string> }>();
    const week = new Set<string>();
    for (const doc of days) {
      const day = doc.day.getTime();
      if (day >= bucketStart(range.from, 'day').getTime()) {
        const users = perDay.get(day) ?? { senders: new Set<string>(), connectors: new Set<string>() };
        for (const id of doc.senders) users.senders.add(id);
        for (const id of doc.connectors) users.connectors.add(id);
        perDay.set(day, users);
      }
      if (day >= weekFrom.getTime()) for (const id of [...doc.senders, ...doc.connectors]) week.add(id);
    }
    return {
      ...describe(range),
      series: [...perStart].sort(([a], [b]) => a - b).map(([, row]) => row),
      top_channels: [...perChannel]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .slice(0, TOP_CHANNELS)
        .map(([channel_id, messages]) => ({ channel_id, messages })),
      active_users: {
        daily: [...perDay]
          .sort(([a], [b]) => a - b)
          .map(([day, users]) => ({
            day: new Date(day).toISOString(),
            senders: users.senders.size,
            connectors: users.connectors.size,
            users: new Set([...users.senders, ...users.connectors]).size,
          })),
        weekly: { from: weekFrom.toISOString(), to: range.to.toISOString(), users: week.size },
      },
    };
  }

  /** The users who sent the most messages over the days of the range (at most `limit`): never content. */
  async users(
    actor: Actor,
    range: { from: Date; to: Date; limit: number },
  ): Promise<{ from: string; to: string; users: UserActivity[] }> {
    assertCan(actor, 'analytics.read');
    const from = bucketStart(range.from, 'day');
    const buckets = await this.deps.analytics.bucketsBetween('senders', 'day', from, range.to);
    const sent = new Map<string, number>();
    for (const bucket of buckets) {
      for (const [key, count] of Object.entries(bucket.counts)) {
        const userId = fromFieldKey(key);
        sent.set(userId, (sent.get(userId) ?? 0) + count);
      }
    }
    const top = [...sent].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, range.limit);
    const people = this.deps.people;
    const docs = people ? await people.users.findByIds(top.map(([id]) => id)) : [];
    const byId = new Map(docs.map((doc) => [doc._id, doc]));
    const now = this.now();
    const users: UserActivity[] = [];
    for (const [userId, messages] of top) {
      const doc = byId.get(userId);
      users.push({
        user_id: userId,
        name: doc?.name ?? null,
        email: doc?.email ?? null,
        last_seen_at: doc?.last_seen_at?.toISOString() ?? null,
        messages_sent: messages,
        open_sessions: people ? await people.sessions.countOpen(userId, now) : 0,
      });
    }
    return { from: from.toISOString(), to: range.to.toISOString(), users };
  }

  async connections(
    actor: Actor,
    range: { from: Date; to: Date; bucket: Granularity },
  ): Promise<ConnectionsReport> {
    const buckets = await this.bucketsIn(actor, 'connections', range);
    const perStart = new Map<number, { opened: number; closed: number; sessionMs: number; peak: number }>();
    for (const bucket of buckets) {
      const start = bucket.start.getTime();
      const row = perStart.get(start) ?? { opened: 0, closed: 0, sessionMs: 0, peak: 0 };
      row.opened += bucket.counts.opened ?? 0;
      row.closed += bucket.counts.closed ?? 0;
      row.sessionMs += bucket.counts.session_ms ?? 0;
      // Instances' peaks need not coincide: their sum is an upper bound of the peak across them.
      row.peak += bucket.peaks?.sockets ?? 0;
      perStart.set(start, row);
    }
    return {
      ...describe(range),
      current: this.deps.currentSockets(),
      series: [...perStart]
        .sort(([a], [b]) => a - b)
        .map(([start, row]) => ({
          start: new Date(start).toISOString(),
          opened: row.opened,
          closed: row.closed,
          peak: row.peak,
          average_session_s: row.closed ? Math.round(row.sessionMs / row.closed / 100) / 10 : null,
        })),
    };
  }
}

/** "messages group" → ["messages", "group"]; "uploads" → ["uploads", ""]. */
function splitCounter(counter: string): [string, string] {
  const space = counter.indexOf(' ');
  return space < 0 ? [counter, ''] : [counter.slice(0, space), counter.slice(space + 1)];
}

function describe(range: { from: Date; to: Date; bucket: Granularity }) {
  return { from: range.from.toISOString(), to: range.to.toISOString(), bucket: range.bucket };
}
