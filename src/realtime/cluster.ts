// What crosses between server instances: events for other instances' sockets, membership changes (so
// every instance's membership cache stays right), revoked sessions, presence changes, and one-use tickets.
// With REDIS_URL it goes through Redis (pub/sub, keys with expiry); without it the instance is alone and
// this is a no-op. If Redis goes away, the instance keeps serving its own users and reports "down" here.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import type { Audience, RealtimeEvent } from '../services/events.js';
import type { MembershipChange } from '../services/channels.js';
import type { Ban } from '../security/store.js';

export interface StatusChange {
  user_id: string;
  status: 'online' | 'away' | 'busy' | 'offline';
  last_seen_at: string | null;
}

export type ClusterMessage =
  | { kind: 'event'; audience: Audience; event: RealtimeEvent }
  | { kind: 'membership'; change: MembershipChange }
  | { kind: 'session_revoked'; sessionId: string }
  | { kind: 'status'; change: StatusChange }
  | { kind: 'security_ban'; ban: Ban }
  | { kind: 'security_unban'; key: string };

export type ClusterState = 'disabled' | 'up' | 'down';

export interface Cluster {
  readonly instanceId: string;
  state(): ClusterState;
  /** Tells the other instances (never this one). */
  publish(message: ClusterMessage): void;
  onMessage(handler: (message: ClusterMessage) => void): void;
  /** Called when the link comes back after an outage (presence is written again). */
  onReconnect(handler: () => void): void;
  /** This instance holds a connection of the user; false when Redis is unreachable. */
  markOnline(userIds: string[]): Promise<void>;
  /** This instance holds none any more; true when no instance does (the user is offline). */
  markOffline(userId: string): Promise<boolean>;
  /** Which of the users some live instance holds; null when Redis is unreachable. */
  heldAnywhere(userIds: string[]): Promise<Set<string> | null>;
  /** The statuses every instance announced (users not offline). */
  statuses(): Promise<StatusChange[] | null>;
  saveStatus(change: StatusChange): Promise<void>;
  saveTicket(ticket: string, value: string, ttlMs: number): Promise<boolean>;
  takeTicket(ticket: string): Promise<string | null>;
  close(): Promise<void>;
}

export function instanceId(): string {
  return randomBytes(6).toString('hex');
}

/** An instance on its own: nothing to tell anyone. */
export class SoloCluster implements Cluster {
  readonly instanceId = instanceId();
  state(): ClusterState {
    return 'disabled';
  }
  publish(): void {}
  onMessage(): void {}
  onReconnect(): void {}
  async markOnline(): Promise<void> {}
  async markOffline(): Promise<boolean> {
    return true;
  }
  async statuses(): Promise<null> {
    return null;
  }
  async heldAnywhere(): Promise<null> {
    return null;
  }
  async saveStatus(): Promise<void> {}
  async saveTicket(): Promise<boolean> {
    return false;
  }
  async takeTicket(): Promise<null> {
    return null;
  }
  async close(): Promise<void> {}
}

const CHANNEL = 'switchboard:events';
const KEY = {
  userInstances: (userId: string) => `switchboard:presence:user:${userId}`,
  statuses: 'switchboard:presence:statuses',
  ticket: (ticket: string) => `switchboard:ticket:${ticket}`,
};
/** Presence keys outlive a crashed instance by at most this long; live instances refresh them. */
const PRESENCE_TTL_S = 90;
const PRESENCE_REFRESH_MS = 30_000;

export class RedisCluster implements Cluster {
  readonly instanceId = instanceId();
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly handlers: ((message: ClusterMessage) => void)[] = [];
  private readonly reconnectHandlers: (() => void)[] = [];
  private readonly localUsers: () => Iterable<string>;
  private readonly refresh: NodeJS.Timeout;
  private wasDown = false;
  /** Set by close(): the connections ending then are no outage (and the logger may be closed already). */
  private closing = false;

  constructor(
    url: string,
    localUsers: () => Iterable<string>,
    private readonly log: FastifyBaseLogger,
  ) {
    this.localUsers = localUsers;
    const options = {
      // Commands fail at once while Redis is away instead of piling up in memory.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    };
    this.commands = new Redis(url, options);
    this.subscriber = new Redis(url, { ...options, enableOfflineQueue: true });
    this.subscriber.on('message', (_channel: string, text: string) => this.receive(text));
    for (const client of [this.commands, this.subscriber]) {
      client.on('error', () => undefined); // state() reports it; ioredis reconnects by itself
      client.on('end', () => undefined);
    }
    this.commands.on('close', () => {
      if (!this.wasDown && !this.closing) log.warn('redis connection lost: serving local users only');
      this.wasDown = true;
    });
    this.commands.on('ready', () => {
      if (!this.wasDown) return;
      this.wasDown = false;
      log.info('redis connection back');
      // A restarted Redis forgot which instance holds whom: say so again before anything else asks.
      void this.markOnline([...this.localUsers()]).then(() => {
        for (const handler of this.reconnectHandlers) handler();
      });
    });
    this.refresh = setInterval(() => void this.markOnline([...this.localUsers()]), PRESENCE_REFRESH_MS);
    this.refresh.unref();
  }

  /**
   * Connects both links. Redis being away at start-up does not stop the server: it serves its own users
   * (health says degraded) and joins the others when Redis answers (ioredis keeps retrying).
   */
  async start(timeoutMs = 3000): Promise<void> {
    // Queued until the link is up; ioredis subscribes again after every reconnect.
    const subscribed = this.subscriber.subscribe(CHANNEL).then(
      () => true,
      () => false,
    );
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    if (!(await Promise.race([subscribed, timeout])) || this.state() !== 'up') {
      this.wasDown = true;
      this.log.warn('redis unreachable at start-up: serving local users only until it answers');
    }
  }

  state(): ClusterState {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready' ? 'up' : 'down';
  }

  publish(message: ClusterMessage): void {
    if (this.commands.status !== 'ready') return;
    const text = JSON.stringify({ origin: this.instanceId, ...message });
    this.commands.publish(CHANNEL, text).catch(() => undefined);
  }

  onMessage(handler: (message: ClusterMessage) => void): void {
    this.handlers.push(handler);
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  private receive(text: string): void {
    let message: ClusterMessage & { origin?: string };
    try {
      message = JSON.parse(text) as ClusterMessage & { origin?: string };
    } catch {
      return;
    }
    if (message.origin === this.instanceId) return;
    for (const handler of this.handlers) {
      try {
        handler(message);
      } catch (error) {
        this.log.warn({ err: error, kind: message.kind }, 'cluster message not handled');
      }
    }
  }

  async markOnline(userIds: string[]): Promise<void> {
    if (!userIds.length || this.commands.status !== 'ready') return;
    const pipeline = this.commands.pipeline();
    for (const userId of userIds) {
      pipeline.sadd(KEY.userInstances(userId), this.instanceId);
      pipeline.expire(KEY.userInstances(userId), PRESENCE_TTL_S);
    }
    await pipeline.exec().catch(() => undefined);
  }

  async markOffline(userId: string): Promise<boolean> {
    if (this.commands.status !== 'ready') return true;
    try {
      const result = await this.commands
        .multi()
        .srem(KEY.userInstances(userId), this.instanceId)
        .scard(KEY.userInstances(userId))
        .exec();
      return Number(result?.[1]?.[1] ?? 0) === 0;
    } catch {
      return true;
    }
  }

  async heldAnywhere(userIds: string[]): Promise<Set<string> | null> {
    if (this.commands.status !== 'ready') return null;
    const pipeline = this.commands.pipeline();
    for (const userId of userIds) pipeline.exists(KEY.userInstances(userId));
    const results = await pipeline.exec().catch(() => null);
    if (!results || results.some(([error]) => error)) return null;
    return new Set(userIds.filter((_, index) => Number(results[index]![1]) > 0));
  }

  async statuses(): Promise<StatusChange[] | null> {
    if (this.commands.status !== 'ready') return null;
    try {
      const all = await this.commands.hgetall(KEY.statuses);
      return Object.values(all).map((text) => JSON.parse(text) as StatusChange);
    } catch {
      return null;
    }
  }

  async saveStatus(change: StatusChange): Promise<void> {
    if (this.commands.status !== 'ready') return;
    const write =
      change.status === 'offline'
        ? this.commands.hdel(KEY.statuses, change.user_id)
        : this.commands.hset(KEY.statuses, change.user_id, JSON.stringify(change));
    await write.catch(() => undefined);
  }

  async saveTicket(ticket: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.commands.status !== 'ready') return false;
    return this.commands.set(KEY.ticket(ticket), value, 'PX', ttlMs).then(
      () => true,
      () => false,
    );
  }

  async takeTicket(ticket: string): Promise<string | null> {
    if (this.commands.status !== 'ready') return null;
    return this.commands.getdel(KEY.ticket(ticket)).catch(() => null);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.refresh);
    await Promise.all([this.commands.quit(), this.subscriber.quit()]).catch(() => undefined);
    this.commands.disconnect();
    this.subscriber.disconnect();
  }
}
