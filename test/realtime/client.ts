// A real `ws` client for the hub tests: records every frame and the close code, and waits for frames by
// type and content (never by sleeping a fixed time when a frame is expected).
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import type { Person } from '../conversations/fixtures.js';
import type { PublicMessage } from '../../src/services/message-content.js';

export type Frame = { type: string; [field: string]: unknown };

/** The answer to `resume` for one channel. */
export interface Sync {
  type: 'sync';
  channel_id: string;
  messages: PublicMessage[];
  last_seq: number;
  complete: boolean;
}

export class TestSocket {
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<number>;
  private waiters: (() => void)[] = [];
  private nextId = 1;

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve(code);
      });
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Waits for the first recorded frame matching `match` (already received or still to come). */
  async waitFor(match: (frame: Frame) => boolean, timeoutMs = 5000, what = 'a frame'): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode}) before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${what}; got ${JSON.stringify(this.frames.map((f) => f.type))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForType(type: string, match: (frame: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    return this.waitFor((frame) => frame.type === type && match(frame), timeoutMs, `a ${type} frame`);
  }

  ofType(type: string): Frame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  send(frame: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.socket.send(data, { binary });
  }

  /** Sends a frame with a fresh id and waits for its one answer (`ack` or `error` with that ref). */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Frame> {
    const id = `r${this.nextId++}`;
    this.send({ ...frame, id });
    return this.waitFor(
      (answer) => (answer.type === 'ack' || answer.type === 'error') && answer.ref === id,
      timeoutMs,
      `the answer to ${String(frame.type)} ${id}`,
    );
  }

  close(): Promise<number> {
    if (this.closeCode === undefined) this.socket.close();
    return this.closed;
  }
}

export function wsUrl(port: number, userId: string, query = ''): string {
  return `ws://127.0.0.1:${port}/api/v2/ws/${encodeURIComponent(userId)}${query ? `?${query}` : ''}`;
}

/** Opens a socket without waiting for anything (for refusal tests). */
export function rawSocket(url: string, headers: Record<string, string> = {}): TestSocket {
  return new TestSocket(new WebSocket(url, { headers }));
}

/** Opens a socket as `who` with their bearer token and waits for `hello`. */
export async function connect(
  port: number,
  who: Person,
  headers: Record<string, string> = {},
): Promise<TestSocket> {
  const socket = rawSocket(wsUrl(port, who.id), { ...who.headers, ...headers });
  await socket.waitForType('hello');
  return socket;
}

/** Resolves with the HTTP status when the server refuses the upgrade. */
export function upgradeRefusal(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('open', () => reject(new Error('the upgrade was accepted')));
    socket.on('error', () => undefined);
  });
}

/** The ws client's TCP socket: pausing it stops reading, so the server's output piles up. */
export function tcpOf(socket: TestSocket): Socket {
  return (socket.socket as unknown as { _socket: Socket })._socket;
}
