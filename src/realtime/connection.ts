// The two kinds of connection the hub delivers to: a WebSocket, and a long-poll subscription for clients
// that cannot hold one. Both take the same serialized event buffer, so fan-out never serializes twice.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { RealtimeEvent } from '../services/events.js';
import type { Principal } from '../services/context.js';

export const CLOSE = {
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  /** The user (or, before authentication, the address) is banned by the detection plugin. */
  BLOCKED: 4429,
  SLOW_CONSUMER: 4008,
} as const;

// ws builds frames with Sender.frame, which @types/ws does not declare.
const { Sender } = createRequire(import.meta.url)('ws') as {
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean },
    ): Buffer[];
  };
};
const TEXT_OPCODE = 1;

let lastPayload: Buffer | undefined;
let lastFrame: Buffer | undefined;
/**
 * The whole WebSocket text frame (header and payload in one buffer) for a payload. A broadcast hands the
 * same payload to every socket in a row, so it is framed once and each socket gets one write of it.
 */
function wireFrame(payload: Buffer): Buffer {
  if (payload !== lastPayload) {
    const parts = Sender.frame(payload, {
      fin: true,
      rsv1: false,
      opcode: TEXT_OPCODE,
      mask: false,
      readOnly: true,
    });
    lastFrame = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    lastPayload = payload;
  }
  return lastFrame!;
}

/** How long a slow consumer's close may wait behind its backlog before the socket is cut. */
const SLOW_CONSUMER_LINGER_MS = 2000;

export interface Recipient {
  readonly id: string;
  readonly principal: Principal;
  /** Sends an already serialized event; `event` is the same object, for recipients that keep objects. */
  deliver(payload: Buffer, event: RealtimeEvent): void;
  close(code: number, reason: string): void;
  isOpen(): boolean;
}

export function connectionId(): string {
  return randomBytes(9).toString('base64url');
}

/** A WebSocket: sends refuse to queue past a bound, and the heartbeat spots a dead peer. */
export class SocketConnection implements Recipient {
  readonly id = connectionId();
  /** Heartbeats sent without any sign of life since (a pong or a frame). */
  missedHeartbeats = 0;

  constructor(
    readonly principal: Principal,
    readonly socket: WebSocket,
    private readonly maxBufferedBytes: number,
    private readonly onSlowConsumer: (connection: SocketConnection) => void,
  ) {}

  /** Channels whose live events wait (a resume is reading them), with what waits. */
  private held: Map<string, Buffer[]> | undefined;
  private heldBytes = 0;

  deliver(payload: Buffer, event: RealtimeEvent): void {
    const waiting = typeof event.channel_id === 'string' ? this.held?.get(event.channel_id) : undefined;
    if (!waiting) return this.send(payload);
    waiting.push(payload);
    this.heldBytes += payload.length;
    // Held output counts like unread output: a reader this far behind is cut off the same way.
    if (this.heldBytes > this.maxBufferedBytes) this.cutOff();
  }

  hold(channelId: string): void {
    (this.held ??= new Map()).set(channelId, this.held.get(channelId) ?? []);
  }

  /** Sends what waited for the channel, in the order it came. */
  release(channelId: string): void {
    const waiting = this.held?.get(channelId);
    if (!waiting) return;
    this.held!.delete(channelId);
    if (this.held!.size === 0) this.held = undefined;
    for (const payload of waiting) {
      this.heldBytes -= payload.length;
      this.send(payload);
    }
  }

  /**
   * Queues a frame unless the peer has fallen too far behind (more than the bound already waiting): then
   * it is closed with 4008 (it resumes after reconnecting) so one slow reader never makes the process
   * grow or delays anyone else. Only the backlog counts: one large frame to a reader that keeps up is fine.
   */
  send(payload: Buffer): void {
    const socket = this.socket;
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > this.maxBufferedBytes) return this.cutOff();
    // ws has no public way to send a frame built beforehand, so the frame goes to its TCP socket. This is
    // safe because compression is off: ws then never holds frames back, so nothing can overtake them.
    const tcp = (socket as unknown as { _socket?: Socket })._socket;
    if (!tcp) return socket.send(payload, { binary: false });
    tcp.write(wireFrame(payload));
  }

  private cutOff(): void {
    const socket = this.socket;
    if (socket.readyState !== socket.OPEN) return;
    this.held = undefined;
    this.heldBytes = 0;
    this.onSlowConsumer(this);
    this.close(CLOSE.SLOW_CONSUMER, 'too far behind: reconnect and resume');
    // The close frame waits behind the backlog; a reader that never reads again must not keep it.
    setTimeout(() => socket.terminate(), SLOW_CONSUMER_LINGER_MS).unref();
  }

  /**
   * Resolves once at most `bytes` wait to be sent (or the socket closes, or `timeoutMs` pass): answers
   * that come in several frames (a resume's syncs) go out at the reader's pace instead of piling up.
   */
  async drained(bytes: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (
      this.socket.readyState === this.socket.OPEN &&
      this.socket.bufferedAmount > bytes &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  close(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING)
      this.socket.close(code, reason);
  }

  isOpen(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  /** Called on the heartbeat tick: false when the peer missed two in a row and was cut off. */
  heartbeat(): boolean {
    if (this.missedHeartbeats >= 2) {
      this.socket.terminate();
      return false;
    }
    this.missedHeartbeats += 1;
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping();
    return true;
  }

  alive(): void {
    this.missedHeartbeats = 0;
  }
}

/**
 * A long-poll subscription: events wait in a bounded buffer until the client asks for them. Positions
 * count up from 1; the cursor a client holds is `<id>.<position>` (the last event it has).
 */
export class PollConnection implements Recipient {
  readonly id = connectionId();
  private buffered: { position: number; event: RealtimeEvent }[] = [];
  private nextPosition = 1;
  /** Set when events were dropped (buffer full): the client must resync before going on. */
  overflowed = false;
  lastPollAt = Date.now();
  private waiter: (() => void) | undefined;
  closed = false;

  constructor(
    readonly principal: Principal,
    private readonly capacity: number,
  ) {}

  get position(): number {
    return this.nextPosition - 1;
  }

  deliver(_payload: Buffer, event: RealtimeEvent): void {
    if (this.closed) return;
    if (this.buffered.length >= this.capacity) {
      this.overflowed = true;
      this.buffered = [];
    }
    this.buffered.push({ position: this.nextPosition++, event });
    this.wake();
  }

  /** Forgets what the client confirmed having (everything up to `position`) and returns the rest. */
  takeAfter(position: number): { events: RealtimeEvent[]; position: number } {
    this.buffered = this.buffered.filter((entry) => entry.position > position);
    return { events: this.buffered.map((entry) => entry.event), position: this.position };
  }

  /** Resolves when an event arrives, the subscription closes, or `ms` pass. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.waiter === done) this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.waiter?.(); // an older poll of the same cursor gives way to the newer one
      this.waiter = done;
    });
  }

  private wake(): void {
    this.waiter?.();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  isOpen(): boolean {
    return !this.closed;
  }
}
