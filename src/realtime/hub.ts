// The hub: who is connected here, which channels they belong to, and delivery of every event the
// services publish to exactly the right connections. Membership comes from a cache of the connected
// users' channels, loaded once when a user's first connection opens and kept right by membership events
// (this instance's and, through the cluster, every other's): no database query per delivery.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.js';
import type { MembershipChange } from '../services/channels.js';
import type { Audience, RealtimeEvent } from '../services/events.js';
import type { Cluster } from './cluster.js';
import { CLOSE, SocketConnection, type Recipient } from './connection.js';
import { encodeFrame, KNOWN_FRAME_TYPES } from './protocol.js';
import type { Presence } from './presence.js';

/** Offered every client frame before it runs (the detection plugin); false refuses it. */
export type FrameInspector = (frame: { type: string }, recipient: Recipient, frameNumber: number) => boolean;

/** Frames that never reached the inspector: unparseable, over the size limit, or refused by a rate limit. */
export type FrameFault = 'malformed' | 'oversized' | 'rate_limited';
export type FrameFaultListener = (fault: FrameFault, recipient: Recipient) => void;

/** New-message events: the connection that sent the message gets the `ack` instead. */
const NEW_MESSAGE_EVENTS = new Set(['chat_message', 'personal_message']);

/** Longer than an authentication can take, and than the session cache of any instance (1 s). */
const REVOKED_MEMORY_MS = 5000;

/** An audience named by channel or by users: everything but a broadcast to everyone. */
type TargetedAudience = Exclude<Audience, { kind: 'everyone' }>;

/** Sockets a broadcast to everyone reaches per turn of the event loop (see deliverLocal). */
const BROADCAST_SLICE = 500;

interface Broadcast {
  event: RealtimeEvent;
  /** The users not reached yet: the hub's own map, walked as it is then. */
  users: Iterator<ConnectedUser>;
  payload?: Buffer;
  /** Whether the event was counted among the frames sent out. */
  counted?: boolean;
}

class ConnectedUser {
  readonly connections = new Set<Recipient>();
  readonly channels = new Set<string>();
  /** Removals seen while the channel list was loading (the loaded list may predate them). */
  removedWhileLoading: Set<string> | null = new Set();
  loading: Promise<boolean> | undefined;
  /** Connections waiting for the channel list before they are registered. */
  waiting = 0;
}

export interface ConnectionObserver {
  opened(openSockets: number, userId: string): void;
  closed(durationMs: number): void;
}

export interface HubStats {
  sockets: number;
  polls: number;
  users: number;
  slow_consumer_closes: number;
  heartbeat_terminations: number;
}

export interface HubDeps {
  config: Config['ws'];
  cluster: Cluster;
  /** The ids of the channels a user belongs to. */
  channelIdsOf(userId: string): Promise<string[]>;
  log: FastifyBaseLogger;
}

export class Hub {
  private readonly users = new Map<string, ConnectedUser>();
  /** Channel id → the connected users (on this instance) who belong to it. */
  private readonly channelMembers = new Map<string, Set<string>>();
  private readonly origin = new AsyncLocalStorage<string | undefined>();
  private socketCount = 0;
  private pollCount = 0;
  private slowConsumerCloses = 0;
  private heartbeatTerminations = 0;
  /** Totals since start, for the metrics (plain counts: the hot paths only add to a map entry). */
  /** When each socket was added, for the session length the analytics keep. */
  private readonly openedAt = new Map<Recipient, number>();
  private connectionObserver: ConnectionObserver | null = null;
  private readonly traffic = {
    framesIn: new Map<string, number>(),
    framesOut: new Map<string, number>(),
    deliveries: 0,
  };
  private readonly heartbeat: NodeJS.Timeout;
  private inspector: FrameInspector = () => true;
  private faultListener: FrameFaultListener = () => {};
  /** Events for channels and users waiting for their fan-out, oldest first (see deliverLocal). */
  private readonly outbox: {
    event: RealtimeEvent;
    audience: TargetedAudience;
    exceptConnectionId?: string;
  }[] = [];
  /** Events for everyone waiting for their fan-out, oldest first; the first may be partly sent. */
  private readonly broadcasts: Broadcast[] = [];
  private draining = false;
  /** Sessions revoked a moment ago, until when: a socket authenticated in that moment is refused. */
  private readonly revoked = new Map<string, number>();
  presence: Presence | undefined;

  constructor(private readonly deps: HubDeps) {
    this.heartbeat = setInterval(() => this.beat(), deps.config.heartbeat_ms);
    this.heartbeat.unref();
    deps.cluster.onMessage((message) => {
      if (message.kind === 'event') this.deliverLocal(message.event, message.audience);
      else if (message.kind === 'membership') this.applyMembership(message.change);
      else if (message.kind === 'session_revoked') this.closeSession(message.sessionId, false);
    });
  }

  // ---- connections ----

  /** Why a new socket must be refused (1013), or null when it may open. */
  refusal(userId: string): string | null {
    if (this.socketCount >= this.deps.config.max_connections) return 'server connection limit reached';
    let sockets = 0;
    for (const recipient of this.users.get(userId)?.connections ?? [])
      if (recipient instanceof SocketConnection) sockets += 1;
    if (sockets >= this.deps.config.max_per_user) return 'too many connections for this user';
    return null;
  }

  /**
   * Registers a connection once its user's channel list is loaded (so it misses nothing it should get
   * and gets nothing before `hello`). Not registered: `revoked` (the session ended a moment ago),
   * `unavailable` (the list could not be read: closed with 1013, the client retries and resumes) or
   * `closed` (the connection went away meanwhile).
   */
  async add(recipient: Recipient): Promise<'added' | 'revoked' | 'unavailable' | 'closed'> {
    if (this.wasRevoked(recipient.principal.sessionId)) {
      recipient.close(CLOSE.UNAUTHORIZED, 'session ended');
      return 'revoked';
    }
    const userId = recipient.principal.id;
    let user = this.users.get(userId);
    if (!user) {
      user = new ConnectedUser();
      this.users.set(userId, user);
      user.loading = this.loadChannels(userId, user);
      void this.presence?.connected(userId);
    }
    user.waiting += 1;
    const loaded = await user.loading;
    user.waiting -= 1;
    let outcome: 'added' | 'unavailable' | 'closed' = 'added';
    if (!loaded) {
      recipient.close(CLOSE.TRY_AGAIN_LATER, 'channel list not available: reconnect shortly');
      outcome = 'unavailable';
    } else if (!recipient.isOpen() || this.users.get(userId) !== user) {
      outcome = 'closed';
    } else {
      user.connections.add(recipient);
      if (recipient instanceof SocketConnection) {
        this.socketCount += 1;
        this.openedAt.set(recipient, Date.now());
        this.connectionObserver?.opened(this.socketCount, userId);
      } else this.pollCount += 1;
    }
    this.forgetIfUnused(userId, user);
    return outcome;
  }

  /** False when the list could not be read (database away): the user's connections are refused. */
  private async loadChannels(userId: string, user: ConnectedUser): Promise<boolean> {
    let ids: string[];
    try {
      ids = await this.deps.channelIdsOf(userId);
    } catch (error) {
      this.deps.log.warn({ err: error, userId }, 'channel list for realtime not loaded');
      // The next connection of this user starts afresh.
      if (this.users.get(userId) === user) this.users.delete(userId);
      return false;
    }
    for (const channelId of ids)
      if (!user.removedWhileLoading?.has(channelId)) this.join(userId, user, channelId);
    user.removedWhileLoading = null;
    return true;
  }

  remove(recipient: Recipient): void {
    const userId = recipient.principal.id;
    const user = this.users.get(userId);
    if (!user?.connections.delete(recipient)) return;
    if (recipient instanceof SocketConnection) {
      this.socketCount -= 1;
      const openedAt = this.openedAt.get(recipient);
      this.openedAt.delete(recipient);
      if (openedAt !== undefined) this.connectionObserver?.closed(Date.now() - openedAt);
    } else this.pollCount -= 1;
    this.forgetIfUnused(userId, user);
  }

  /** A user with no connection left (and none being added) leaves the cache; presence starts its grace. */
  private forgetIfUnused(userId: string, user: ConnectedUser): void {
    if (user.connections.size > 0 || user.waiting > 0) return;
    if (this.users.get(userId) === user) this.users.delete(userId);
    for (const channelId of user.channels) this.leaveIndex(userId, channelId);
    user.channels.clear();
    this.presence?.disconnected(userId, () => this.users.has(userId));
  }

  isConnected(userId: string): boolean {
    return this.users.has(userId);
  }

  connectedUserIds(): IterableIterator<string> {
    return this.users.keys();
  }

  /** Whether the connected user belongs to the channel, by this instance's cache. */
  isMember(userId: string, channelId: string): boolean {
    return this.users.get(userId)?.channels.has(channelId) ?? false;
  }

  stats(): HubStats {
    return {
      sockets: this.socketCount,
      polls: this.pollCount,
      users: this.users.size,
      slow_consumer_closes: this.slowConsumerCloses,
      heartbeat_terminations: this.heartbeatTerminations,
    };
  }

  /** A connection closed for reading too slowly: it stops counting (and receiving) at once. */
  slowConsumer(connection: SocketConnection): void {
    this.remove(connection);
    this.slowConsumerCloses += 1;
    this.deps.log.warn(
      {
        userId: connection.principal.id,
        connectionId: connection.id,
        buffered: connection.socket.bufferedAmount,
      },
      'slow websocket consumer closed',
    );
  }

  // ---- membership cache ----

  /** A membership change from a service of this instance: applied here and told to the others. */
  membershipChanged(change: MembershipChange): void {
    this.applyMembership(change);
    this.deps.cluster.publish({ kind: 'membership', change });
  }

  private applyMembership(change: MembershipChange): void {
    for (const userId of change.userIds) {
      const user = this.users.get(userId);
      if (!user) continue;
      if (change.change === 'added') {
        user.removedWhileLoading?.delete(change.channelId);
        this.join(userId, user, change.channelId);
      } else {
        user.removedWhileLoading?.add(change.channelId);
        user.channels.delete(change.channelId);
        this.leaveIndex(userId, change.channelId);
      }
    }
  }

  private join(userId: string, user: ConnectedUser, channelId: string): void {
    user.channels.add(channelId);
    let members = this.channelMembers.get(channelId);
    if (!members) this.channelMembers.set(channelId, (members = new Set()));
    members.add(userId);
  }

  private leaveIndex(userId: string, channelId: string): void {
    const members = this.channelMembers.get(channelId);
    if (!members) return;
    members.delete(userId);
    if (members.size === 0) this.channelMembers.delete(channelId);
  }

  // ---- delivery ----

  /**
   * Runs `work` on behalf of a connection: a new message it sends (MessagesService publishes it inside
   * `work`) is not echoed back to it as an event, since its ack carries the message.
   */
  runFor<T>(connectionId: string | undefined, work: () => Promise<T>): Promise<T> {
    return this.origin.run(connectionId, work);
  }

  /** An event from a service: delivered here and on every other instance. */
  publish(event: RealtimeEvent, audience: Audience): void {
    const except = NEW_MESSAGE_EVENTS.has(event.type) ? this.origin.getStore() : undefined;
    this.deliverLocal(event, audience, except);
    this.deps.cluster.publish({ kind: 'event', audience, event });
  }

  /**
   * Queues an event for this instance's recipients. Events for channels and users go out in the order
   * they came, one per turn of the event loop: a fan-out to thousands of sockets takes milliseconds, and
   * two in the same turn would add up to a delay everyone on this instance feels.
   *
   * Events for everyone (presence changes, announcements) go out in order among themselves, at most
   * BROADCAST_SLICE sockets per turn, next to the other events. One write per socket costs 10–20 µs here,
   * so a broadcast to 5,000 sockets in one go stopped everything else for 50–100 ms; during a reconnect
   * storm presence changes every 250 ms, and messages waited behind it (the storm test's probe). None of
   * them names a channel, so no channel's order depends on them.
   */
  deliverLocal(event: RealtimeEvent, audience: Audience, exceptConnectionId?: string): void {
    if (audience.kind === 'everyone') this.broadcasts.push({ event, users: this.users.values() });
    else this.outbox.push({ event, audience, exceptConnectionId });
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.draining || (this.outbox.length === 0 && this.broadcasts.length === 0)) return;
    this.draining = true;
    setImmediate(this.drainTurn);
  }

  /** One turn: the oldest channel or user event, and a slice of the oldest broadcast. */
  private readonly drainTurn = (): void => {
    this.draining = false;
    const next = this.outbox.shift();
    if (next) this.fanOut(next.event, next.audience, next.exceptConnectionId);
    this.broadcastSlice();
    this.scheduleDrain();
  };

  /**
   * Delivers the channel and user events queued now (a resume holds a channel only after older events
   * went out). Broadcasts name no channel and keep their pace.
   */
  flush(): void {
    for (let next = this.outbox.shift(); next; next = this.outbox.shift())
      this.fanOut(next.event, next.audience, next.exceptConnectionId);
  }

  /**
   * Sends the oldest broadcast on to about BROADCAST_SLICE more sockets. It walks the live map of users:
   * one who leaves before their turn is skipped, one who arrives meanwhile gets it too.
   */
  private broadcastSlice(): void {
    const broadcast = this.broadcasts[0];
    if (!broadcast) return;
    let sent = 0;
    while (sent < BROADCAST_SLICE) {
      const { value: user, done } = broadcast.users.next();
      if (done) {
        this.broadcasts.shift();
        break;
      }
      for (const recipient of user.connections) {
        broadcast.payload ??= encodeFrame(broadcast.event);
        recipient.deliver(broadcast.payload, broadcast.event);
        sent += 1;
      }
    }
    if (sent > 0) this.countDelivered(broadcast.event.type, sent, !broadcast.counted);
    broadcast.counted = true;
  }

  /** Serializes once and hands the same buffer to every local recipient of the audience. */
  private fanOut(event: RealtimeEvent, audience: TargetedAudience, exceptConnectionId?: string): void {
    let payload: Buffer | undefined;
    let delivered = 0;
    const send = (user: ConnectedUser | undefined) => {
      if (!user) return;
      for (const recipient of user.connections) {
        if (recipient.id === exceptConnectionId) continue;
        payload ??= encodeFrame(event);
        recipient.deliver(payload, event);
        delivered += 1;
      }
    };
    if (audience.kind === 'channel') {
      for (const userId of this.channelMembers.get(audience.channelId) ?? [])
        if (userId !== audience.exceptUserId) send(this.users.get(userId));
    } else {
      for (const userId of new Set(audience.userIds)) send(this.users.get(userId));
    }
    if (delivered) this.countDelivered(event.type, delivered, true);
  }

  /** Events sent out by type (once per event) and deliveries (once per socket), for the metrics. */
  private countDelivered(type: string, deliveries: number, newEvent: boolean): void {
    if (newEvent) this.traffic.framesOut.set(type, (this.traffic.framesOut.get(type) ?? 0) + 1);
    this.traffic.deliveries += deliveries;
  }

  // ---- sessions, health, shutdown ----

  private wasRevoked(sessionId: string): boolean {
    const until = this.revoked.get(sessionId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.revoked.delete(sessionId);
    return false;
  }

  /** Closes every connection of a revoked session (4401); `tellOthers` passes it to other instances. */
  closeSession(sessionId: string, tellOthers = true): void {
    if (this.revoked.size > 10_000) {
      const now = Date.now();
      for (const [id, until] of this.revoked) if (until <= now) this.revoked.delete(id);
    }
    this.revoked.set(sessionId, Date.now() + REVOKED_MEMORY_MS);
    for (const user of [...this.users.values()]) {
      for (const recipient of [...user.connections]) {
        if (recipient.principal.sessionId !== sessionId) continue;
        recipient.close(CLOSE.UNAUTHORIZED, 'session ended');
        if (!(recipient instanceof SocketConnection)) this.remove(recipient);
      }
    }
    if (tellOthers) this.deps.cluster.publish({ kind: 'session_revoked', sessionId });
  }

  /** The sessions of this instance's connections (re-checked periodically by the plugin). */
  sessionIds(): Set<string> {
    const ids = new Set<string>();
    for (const user of this.users.values())
      for (const recipient of user.connections) ids.add(recipient.principal.sessionId);
    return ids;
  }

  useFrameInspector(inspector: FrameInspector, onFault?: FrameFaultListener): void {
    this.inspector = inspector;
    if (onFault) this.faultListener = onFault;
  }

  reportFault(fault: FrameFault, recipient: Recipient): void {
    this.faultListener(fault, recipient);
  }

  /** Closes every connection of a user here (a ban). */
  closeUser(userId: string, code: number, reason: string): void {
    for (const recipient of [...(this.users.get(userId)?.connections ?? [])]) {
      recipient.close(code, reason);
      if (!(recipient instanceof SocketConnection)) this.remove(recipient);
    }
  }

  inspect(frame: { type: string }, recipient: Recipient, frameNumber: number): boolean {
    // Counted under its type only when it is one the protocol knows: labels stay bounded.
    const type = KNOWN_FRAME_TYPES.has(frame.type) ? frame.type : 'other';
    this.traffic.framesIn.set(type, (this.traffic.framesIn.get(type) ?? 0) + 1);
    return this.inspector(frame, recipient, frameNumber);
  }

  /** Told of every socket added (with the count now open) and removed (with how long it was open). */
  observeConnections(observer: ConnectionObserver): void {
    this.connectionObserver = observer;
  }

  /** Frames received by type, events sent out by type, and deliveries (one per socket), since start. */
  trafficTotals(): {
    framesIn: ReadonlyMap<string, number>;
    framesOut: ReadonlyMap<string, number>;
    deliveries: number;
  } {
    return this.traffic;
  }

  private beat(): void {
    for (const user of this.users.values()) {
      for (const recipient of user.connections) {
        if (recipient instanceof SocketConnection && !recipient.heartbeat()) this.heartbeatTerminations += 1;
      }
    }
  }

  /** Closes every connection with `code` (they reconnect and resume). */
  closeAll(code: number, reason: string): void {
    for (const user of [...this.users.values()])
      for (const recipient of [...user.connections]) recipient.close(code, reason);
  }

  /** Tells every client to reconnect elsewhere (1001) and stops the timers. */
  close(): void {
    clearInterval(this.heartbeat);
    this.presence?.close();
    this.closeAll(CLOSE.GOING_AWAY, 'server shutting down');
  }
}
