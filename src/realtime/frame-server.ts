// Serves one socket's frames, one at a time and in order: parse, offer to the detection hook, run with the
// session's current principal, answer. Each frame with an `id` gets exactly one `ack` or `error`; nothing
// a client sends can throw out of here (a throw in a socket listener would end the process).
import type { FastifyBaseLogger } from 'fastify';
import type { RawData } from 'ws';
import { Errors } from '../errors.js';
import { describeError } from '../plugins/app/errors.js';
import type { Principal, RequestContext } from '../services/context.js';
import { CLOSE, type SocketConnection } from './connection.js';
import type { FrameHandlers, FrameOutput } from './handlers.js';
import type { Hub } from './hub.js';
import { encodeFrame, parseFrame, type ClientFrame } from './protocol.js';

/** Frames a client may have waiting for an answer; more are refused, so one client cannot queue work. */
export const MAX_FRAMES_IN_FLIGHT = 32;

export interface FrameServerDeps {
  connection: SocketConnection;
  hub: Hub;
  handlers: FrameHandlers;
  /** The session's principal now (roles change, sessions end); null when the session is over. */
  currentPrincipal(sessionId: string): Promise<Principal | null>;
  /** Output a multi-frame answer may leave unread before it waits for the reader. */
  pacingBytes: number;
  context: RequestContext;
  /** Made on first use (most sockets never log anything). */
  log: () => FastifyBaseLogger;
}

type Frame = { type: string; [field: string]: unknown };

/** Also the output of its handlers (pong, sync…): methods, not closures, since there is one per socket. */
export class FrameServer implements FrameOutput {
  private inFlight = 0;
  /** Frames received on this socket (a security event names the frame by its number). */
  private frames = 0;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly deps: FrameServerDeps) {}

  async send(frame: Frame): Promise<void> {
    await this.deps.connection.drained(this.deps.pacingBytes);
    this.reply(frame);
  }

  hold(channelId: string): void {
    // Events published before the hold go out first: none of them may follow the sync.
    this.deps.hub.flush();
    this.deps.connection.hold(channelId);
  }

  release(channelId: string): void {
    this.deps.connection.release(channelId);
  }

  receive(data: RawData, isBinary: boolean): void {
    const { connection, hub } = this.deps;
    connection.alive();
    if (!connection.isOpen()) return;
    this.frames += 1;
    if (isBinary) {
      hub.reportFault('malformed', connection);
      return this.fail(new Errors.INVALID_FRAME(), undefined);
    }
    const parsed = parseFrame(data.toString());
    if (!parsed.ok) {
      hub.reportFault('malformed', connection);
      // An attack in a field is often what made the frame invalid (too long, wrong shape): still scored.
      if (parsed.raw) this.inspectInvalid(parsed.raw);
      return this.fail(parsed.error, parsed.ref);
    }
    const { frame } = parsed;
    let allowed: boolean;
    try {
      allowed = hub.inspect(frame, connection, this.frames);
    } catch (error) {
      return this.fail(error, frame.id);
    }
    if (!allowed) return this.fail(new Errors.FORBIDDEN(), frame.id);
    if (this.inFlight >= MAX_FRAMES_IN_FLIGHT) {
      // Back-pressure, not abuse: a slow server must not get a well-behaved client banned.
      const busy = Object.assign(new Errors.RATE_LIMITED('a moment'), {
        retryAfterMs: 1000,
        backPressure: true,
      });
      return this.fail(busy, frame.id);
    }
    this.inFlight += 1;
    this.queue = this.queue.then(() => this.run(frame)).finally(() => (this.inFlight -= 1));
  }

  private inspectInvalid(raw: Record<string, unknown>): void {
    try {
      const type = typeof raw.type === 'string' ? raw.type : 'invalid';
      this.deps.hub.inspect({ ...raw, type }, this.deps.connection, this.frames);
    } catch (error) {
      this.deps.log().error({ err: error }, 'websocket frame inspection failed');
    }
  }

  private async run(frame: ClientFrame): Promise<void> {
    const { connection, hub, handlers } = this.deps;
    // Frames still queued when the session ended (or the socket closed) are not run.
    if (!connection.isOpen()) return;
    try {
      // Roles and the session are checked for every frame, as for every REST request.
      const principal = await this.deps.currentPrincipal(connection.principal.sessionId);
      if (!principal) {
        connection.close(CLOSE.UNAUTHORIZED, 'session ended');
        return;
      }
      const context = {
        ...this.deps.context,
        requestId: `${this.deps.context.requestId}:${frame.id ?? frame.type}`,
      };
      // A send with an id is answered by its ack; without one, the sending tab gets the event like others.
      const origin = frame.id !== undefined ? connection.id : undefined;
      const ack = await hub.runFor(origin, () => handlers.handle(frame, principal, context, this));
      if (frame.id !== undefined) this.reply({ type: 'ack', ref: frame.id, ...ack });
    } catch (error) {
      this.fail(error, frame.id);
    }
  }

  private reply(frame: Frame): void {
    this.deps.connection.send(encodeFrame(frame));
  }

  private fail(error: unknown, ref: string | undefined): void {
    try {
      const described = describeError(
        (error instanceof Error ? error : new Errors.INTERNAL_ERROR()) as Parameters<typeof describeError>[0],
      );
      if (described.statusCode >= 500 && described.code !== 'DATABASE_UNAVAILABLE')
        this.deps.log().error({ err: error }, 'websocket frame failed');
      if (described.code === 'RATE_LIMITED' && !(error as { backPressure?: boolean }).backPressure)
        this.deps.hub.reportFault('rate_limited', this.deps.connection);
      const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
      this.reply({
        type: 'error',
        ...(ref !== undefined ? { ref } : {}),
        code: described.code,
        message: described.message,
        ...(described.details?.length ? { details: described.details } : {}),
        ...(retryAfterMs !== undefined ? { retry_after_ms: retryAfterMs } : {}),
      });
    } catch (failure) {
      this.deps.log().error({ err: failure }, 'websocket error answer failed');
    }
  }
}
