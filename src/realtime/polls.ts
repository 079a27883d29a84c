// Long-poll subscriptions (GET /events) for clients that cannot hold a socket. Each is a connection of
// the hub like a socket, with a bounded buffer; one not polled for POLL_IDLE_MS is dropped.
import { Errors } from '../errors.js';
import type { Principal } from '../services/context.js';
import { PollConnection } from './connection.js';
import type { Hub } from './hub.js';
import type { RealtimeEvent } from '../services/events.js';

const POLL_IDLE_MS = 60_000;
const CURSOR = /^([A-Za-z0-9_-]{1,32})\.(\d{1,15})$/;

export interface PollAnswer {
  events: RealtimeEvent[];
  cursor: string;
  reset?: true;
}

export class Polls {
  private readonly subscriptions = new Map<string, PollConnection>();
  /** Each user's subscriptions, oldest first: beyond `perUser` the oldest is dropped. */
  private readonly byUser = new Map<string, PollConnection[]>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    private readonly hub: Hub,
    private readonly capacity: number,
    private readonly perUser: number,
  ) {
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), POLL_IDLE_MS / 4);
    this.sweepTimer.unref();
  }

  /**
   * Events after the cursor, waiting up to `waitMs` for the first. Without a cursor (or with one that
   * expired or overflowed) a new subscription starts and answers at once; `reset` tells the client to
   * catch up through /channels/:id/changes first.
   */
  async poll(principal: Principal, cursor: string | undefined, waitMs: number, signal: AbortSignal) {
    if (cursor === undefined) return this.subscribe(principal, false);
    const match = CURSOR.exec(cursor);
    if (!match) throw new Errors.INVALID_CURSOR();
    const subscription = this.subscriptions.get(match[1]!);
    if (!subscription || subscription.closed) return this.subscribe(principal, true);
    // Someone else's cursor is treated as unknown: it reveals nothing and starts the caller afresh.
    if (subscription.principal.id !== principal.id) return this.subscribe(principal, true);
    subscription.lastPollAt = Date.now();
    if (subscription.overflowed) {
      subscription.overflowed = false;
      subscription.takeAfter(Number.MAX_SAFE_INTEGER);
      return this.answer(subscription, [], true);
    }
    let taken = subscription.takeAfter(Number(match[2]));
    if (taken.events.length === 0 && waitMs > 0) {
      await subscription.wait(waitMs, signal);
      subscription.lastPollAt = Date.now();
      if (subscription.closed) return this.answer(subscription, [], false);
      taken = subscription.takeAfter(Number(match[2]));
    }
    return this.answer(subscription, taken.events, false);
  }

  private async subscribe(principal: Principal, reset: boolean): Promise<PollAnswer> {
    // Subscriptions cost memory for every event: one user holds at most `perUser` (their tabs).
    const mine = this.byUser.get(principal.id) ?? [];
    for (const oldest of mine.slice(0, Math.max(0, mine.length - this.perUser + 1))) this.drop(oldest);
    const subscription = new PollConnection(principal, this.capacity);
    const outcome = await this.hub.add(subscription);
    if (outcome === 'revoked') throw new Errors.INVALID_TOKEN();
    if (outcome !== 'added') throw new Errors.DATABASE_UNAVAILABLE();
    this.subscriptions.set(subscription.id, subscription);
    this.byUser.set(principal.id, [...(this.byUser.get(principal.id) ?? []), subscription]);
    return this.answer(subscription, [], reset);
  }

  private drop(subscription: PollConnection): void {
    this.subscriptions.delete(subscription.id);
    const userId = subscription.principal.id;
    const rest = (this.byUser.get(userId) ?? []).filter((other) => other !== subscription);
    if (rest.length) this.byUser.set(userId, rest);
    else this.byUser.delete(userId);
    subscription.close();
    this.hub.remove(subscription);
  }

  private answer(subscription: PollConnection, events: RealtimeEvent[], reset: boolean): PollAnswer {
    const cursor = `${subscription.id}.${subscription.position}`;
    return reset ? { events, cursor, reset: true } : { events, cursor };
  }

  private sweep(now: number): void {
    for (const subscription of [...this.subscriptions.values()]) {
      if (!subscription.closed && now - subscription.lastPollAt < POLL_IDLE_MS) continue;
      this.drop(subscription);
    }
  }

  /** Ends every subscription (a Redis outage: they resubscribe and catch up). */
  resetAll(): void {
    for (const subscription of [...this.subscriptions.values()]) this.drop(subscription);
  }

  close(): void {
    clearInterval(this.sweepTimer);
    for (const subscription of this.subscriptions.values()) subscription.close();
  }
}
