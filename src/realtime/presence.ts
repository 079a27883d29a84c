// Presence: a user is online while any connection is open (on any instance), and offline only after a
// grace period once the last one closes, so a page reload never flickers. `away`/`busy` are chosen by the
// user and kept on their record. Changes are gathered and sent every `status_flush_ms`, so 1,000 users
// reconnecting in one second cost each connection a few frames, not 1,000.
import type { FastifyBaseLogger } from 'fastify';
import type { Cluster, StatusChange } from './cluster.js';
import type { PresenceStatus } from '../services/users.js';

/** After a Redis outage, how long the other instances get to say where their users stand. */
const RESYNC_SETTLE_MS = 1000;
/** How often the shared record is checked for users of instances that are gone. */
const SHARED_SWEEP_MS = 30_000;

export interface PresenceDeps {
  cluster: Cluster;
  graceMs: number;
  flushMs: number;
  /** The status the user chose last (kept on their record); `online` when none. */
  chosenStatus(userId: string): Promise<PresenceStatus>;
  saveChosenStatus(userId: string, status: PresenceStatus): Promise<void>;
  saveLastSeen(userId: string, at: Date): Promise<void>;
  /** The users with a connection on this instance. */
  localUsers(): Iterable<string>;
  isLocal(userId: string): boolean;
  /** Sends a status frame to every local connection. */
  broadcast(frame: { type: string; [field: string]: unknown }): void;
  log: FastifyBaseLogger;
}

export class Presence {
  /** Users not offline, as this instance knows them (its own users and what others announced). */
  private readonly known = new Map<string, StatusChange>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private pending = new Map<string, StatusChange>();
  /** Changes made here while the other instances could not hear them. */
  private readonly unsent = new Map<string, StatusChange>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly deps: PresenceDeps) {
    this.flushTimer = setInterval(() => this.flush(), deps.flushMs);
    this.flushTimer.unref();
    deps.cluster.onMessage((message) => {
      if (message.kind === 'status') this.heard(message.change);
    });
    void this.loadShared();
    deps.cluster.onReconnect(() => this.resync());
    // Instances that died without saying goodbye leave their users in the shared record: swept here.
    this.sweepTimer = setInterval(() => void this.sweepShared(), SHARED_SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** A change another instance announced. */
  private heard(change: StatusChange): void {
    // Another instance saw its last tab of this user close; the user is still connected here.
    if (change.status === 'offline' && this.deps.isLocal(change.user_id)) {
      const mine = this.known.get(change.user_id);
      if (mine) this.share(mine);
      return;
    }
    this.apply(change);
  }

  /** Users listed as online whom no live instance holds any more go offline. */
  private async sweepShared(): Promise<void> {
    const shared = await this.deps.cluster.statuses();
    const remote = (shared ?? []).map((change) => change.user_id).filter((id) => !this.deps.isLocal(id));
    if (!remote.length) return;
    const held = await this.deps.cluster.heldAnywhere(remote);
    if (!held) return;
    const now = new Date().toISOString();
    for (const userId of remote)
      if (!held.has(userId)) this.announce({ user_id: userId, status: 'offline', last_seen_at: now });
  }

  /**
   * Shutting down with other instances around: this instance's users go offline for them now, unless
   * another instance holds them too (they reconnect elsewhere and come back online there).
   */
  async leaving(): Promise<void> {
    if (this.deps.cluster.state() !== 'up') return;
    const now = new Date().toISOString();
    await Promise.all(
      [...this.deps.localUsers()].map(async (userId) => {
        if (await this.deps.cluster.markOffline(userId))
          this.share({ user_id: userId, status: 'offline', last_seen_at: now });
      }),
    );
  }

  private async loadShared(): Promise<void> {
    const shared = await this.deps.cluster.statuses();
    for (const change of shared ?? [])
      if (!this.known.has(change.user_id)) this.known.set(change.user_id, change);
  }

  /**
   * After a Redis outage: tell the others what changed here meanwhile and where this instance's users
   * stand (a restarted Redis forgot), then, once the others have done the same, take the shared view for
   * everyone else — users who left another instance during the outage go offline here.
   */
  private resync(): void {
    const told = new Set<string>();
    for (const change of this.unsent.values()) {
      this.share(change);
      told.add(change.user_id);
    }
    this.unsent.clear();
    for (const userId of this.deps.localUsers()) {
      const change = this.known.get(userId);
      if (change && !told.has(userId)) this.share(change);
    }
    setTimeout(() => void this.adoptShared(), RESYNC_SETTLE_MS).unref();
  }

  private async adoptShared(): Promise<void> {
    const shared = await this.deps.cluster.statuses();
    if (!shared) return;
    const byUser = new Map(shared.map((change) => [change.user_id, change]));
    const now = new Date().toISOString();
    for (const userId of [...this.known.keys()]) {
      if (!this.deps.isLocal(userId) && !byUser.has(userId))
        this.apply({ user_id: userId, status: 'offline', last_seen_at: now });
    }
    for (const change of shared) if (!this.deps.isLocal(change.user_id)) this.apply(change);
  }

  /** The user's first connection on this instance opened. */
  async connected(userId: string): Promise<void> {
    const timer = this.graceTimers.get(userId);
    if (timer) {
      // Back within the grace period: nobody saw them leave.
      clearTimeout(timer);
      this.graceTimers.delete(userId);
      return;
    }
    await this.deps.cluster.markOnline([userId]);
    const current = this.known.get(userId);
    if (current) return;
    const status = await this.deps.chosenStatus(userId).catch(() => 'online' as const);
    this.announce({ user_id: userId, status, last_seen_at: new Date().toISOString() });
  }

  /** The user's last connection on this instance closed; `stillConnected` tells if one came back. */
  disconnected(userId: string, stillConnected: () => boolean): void {
    if (this.graceTimers.has(userId)) return;
    const timer = setTimeout(() => {
      this.graceTimers.delete(userId);
      if (stillConnected()) return;
      void this.goOffline(userId, stillConnected);
    }, this.deps.graceMs);
    timer.unref();
    this.graceTimers.set(userId, timer);
  }

  private async goOffline(userId: string, stillConnected: () => boolean): Promise<void> {
    const nowhere = await this.deps.cluster.markOffline(userId);
    if (!nowhere || stillConnected()) return;
    const at = new Date();
    await this.deps
      .saveLastSeen(userId, at)
      .catch((error: unknown) => this.deps.log.warn({ err: error, userId }, 'last seen not saved'));
    this.announce({ user_id: userId, status: 'offline', last_seen_at: at.toISOString() });
  }

  /** `away`/`busy`/`online` chosen by the user: kept on their record and told to everyone. */
  async choose(userId: string, status: PresenceStatus): Promise<void> {
    await this.deps.saveChosenStatus(userId, status);
    this.announce({ user_id: userId, status, last_seen_at: new Date().toISOString() });
  }

  statusOf(userId: string): StatusChange | undefined {
    return this.known.get(userId);
  }

  /** Everyone not offline. */
  snapshot(): StatusChange[] {
    return [...this.known.values()];
  }

  private announce(change: StatusChange): void {
    this.apply(change);
    // While Redis is away the others cannot hear it: kept (the latest per user) for when it returns.
    if (this.deps.cluster.state() === 'down') this.unsent.set(change.user_id, change);
    else this.share(change);
  }

  private share(change: StatusChange): void {
    this.deps.cluster.publish({ kind: 'status', change });
    void this.deps.cluster.saveStatus(change);
  }

  private apply(change: StatusChange): void {
    const before = this.known.get(change.user_id);
    if (change.status === 'offline') this.known.delete(change.user_id);
    else this.known.set(change.user_id, change);
    if (before?.status === change.status && change.status !== 'offline') return;
    if (!before && change.status === 'offline') return;
    this.pending.set(change.user_id, change);
  }

  /** Sends what changed since the last flush: one frame, whatever the number of changes. */
  flush(): void {
    if (this.pending.size === 0) return;
    const changes = [...this.pending.values()];
    this.pending = new Map();
    if (changes.length === 1) this.deps.broadcast({ type: 'status_update', ...changes[0] });
    else this.deps.broadcast({ type: 'status_updates', statuses: changes });
  }

  close(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.sweepTimer);
    for (const timer of this.graceTimers.values()) clearTimeout(timer);
    this.graceTimers.clear();
  }
}
