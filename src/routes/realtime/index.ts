// The realtime endpoints: POST /ws/ticket, the WebSocket at GET /ws/:userId, and the long-poll fallback
// GET /events. The socket authenticates itself (ticket or bearer) before the upgrade and answers a bad
// credential with a close code the client can act on (4401, 4403), since browsers see no HTTP status.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { FastifyRequest } from 'fastify';
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import { Errors } from '../../errors.js';
import { bearerToken, requestContext } from '../../plugins/app/authenticate.js';
import { describeError } from '../../plugins/app/errors.js';
import { CLOSE, SocketConnection } from '../../realtime/connection.js';
import { encodeFrame, FRAME_TYPES, parseFrame, type ClientFrame } from '../../realtime/protocol.js';
import { errorResponses } from '../../schemas/error.js';
import { userRef } from '../../schemas/common.js';
import type { Principal, RequestContext } from '../../services/context.js';

/** Frames a client may have waiting for an answer; more are refused, so one client cannot queue work. */
const MAX_FRAMES_IN_FLIGHT = 32;

const SOCKET_DESCRIPTION = [
  'Upgrade to a WebSocket. `:userId` is your id or email. Close codes: 4401 bad, used or ended credential;',
  '4403 another user; 1013 too many sockets; 1009 frame over the size limit; 4008 slow reader (resume);',
  '1001 server shutting down. A foreign Origin gets 403 ORIGIN_NOT_ALLOWED before the upgrade.',
  '',
  `Client frames (JSON, \`type\` plus an optional \`id\` answered by one \`ack\` or \`error\` with \`ref\`): ${FRAME_TYPES.map((t) => `\`${t}\``).join(', ')}.`,
  '',
  'Server frames: `hello`, `chat_message`, `personal_message`, `message_update`, `reaction_update`,',
  '`read_receipt`, `unread_update`, `typing`, `status_update`, `status_updates`, `all_statuses`, `sync`,',
  "`notification`, `new_announcement`, `ack`, `error`, `pong`. The README's Realtime section shows an",
  'example of every frame.',
].join('\n');

type SocketAuth = { principal: Principal } | { close: number; reason: string };

declare module 'fastify' {
  interface FastifyRequest {
    socketAuth?: SocketAuth;
  }
}

const ticketResponse = z.object({ ticket: z.string(), expires_in: z.number() });
const eventsQuery = z.strictObject({
  cursor: z.string().max(64).optional(),
  wait_s: z.coerce.number().int().min(0).max(30).default(25),
});
const eventsResponse = z.object({
  events: z.array(z.object({ type: z.string() }).loose()),
  cursor: z.string(),
  reset: z.literal(true).optional(),
});

const realtimeRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const { realtime, config } = fastify;
  const security = [{ bearer: [] }];
  const allowedOrigins = new Set(config.server.cors_origins);

  fastify.post(
    '/ws/ticket',
    {
      schema: {
        tags: ['realtime'],
        summary: 'A one-use ticket (30 s) to open the WebSocket from a browser: /ws/:userId?ticket=…',
        security,
        response: { 200: ticketResponse, ...errorResponses(401) },
      },
    },
    async (request) => realtime.tickets.issue(request.principal),
  );

  /** Same-origin pages and the CORS_ORIGINS list may open sockets; other sites may not (CSWSH). */
  function originAllowed(request: FastifyRequest): boolean {
    const origin = request.headers.origin;
    if (origin === undefined || allowedOrigins.has('*') || allowedOrigins.has(origin)) return true;
    try {
      return new URL(origin).host === request.headers.host;
    } catch {
      return false;
    }
  }

  async function authenticateSocket(request: FastifyRequest, userId: string): Promise<SocketAuth> {
    const unauthorized = { close: CLOSE.UNAUTHORIZED, reason: 'authentication required' };
    const ticket = (request.query as { ticket?: unknown }).ticket;
    let principal: Principal | null = null;
    try {
      if (typeof ticket === 'string' && ticket.length > 0 && ticket.length <= 128) {
        const holder = await realtime.tickets.redeem(ticket);
        if (!holder) return unauthorized;
        principal = await fastify.auth.sessionPrincipalFor(holder.sessionId);
        if (principal?.id !== holder.userId) return unauthorized;
      } else {
        const token = bearerToken(request);
        if (!token) return unauthorized;
        principal = await fastify.auth.authenticate(token);
      }
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 401) return unauthorized;
      throw error; // database away: the upgrade gets 503 and the client retries
    }
    const target = userId.toLowerCase();
    if (target !== principal.id && target !== principal.email.toLowerCase()) {
      return { close: CLOSE.FORBIDDEN, reason: 'this socket belongs to another user' };
    }
    return { principal };
  }

  fastify.get(
    '/ws/:userId',
    {
      websocket: true,
      // The socket checks its own credential (a ticket or a bearer token) below.
      config: { public: true },
      schema: {
        tags: ['realtime'],
        summary: 'The WebSocket hub: ?ticket= (from POST /ws/ticket) or Authorization: Bearer',
        description: SOCKET_DESCRIPTION,
        params: z.strictObject({ userId: userRef }),
        querystring: z.object({ ticket: z.string().max(128).optional() }).loose(),
      },
      preValidation: async (request) => {
        if (!originAllowed(request)) throw new Errors.ORIGIN_NOT_ALLOWED();
        request.socketAuth = await authenticateSocket(request, (request.params as { userId: string }).userId);
      },
    },
    (socket, request) => {
      // Frames that arrive before the connection is registered wait here (none is lost).
      const early: { data: RawData; isBinary: boolean }[] = [];
      let receive: (data: RawData, isBinary: boolean) => void = (data, isBinary) =>
        void early.push({ data, isBinary });
      socket.on('message', (data, isBinary) => receive(data, isBinary));

      const auth = request.socketAuth!;
      if ('close' in auth) return socket.close(auth.close, auth.reason);
      const refusal = realtime.hub.refusal(auth.principal.id);
      if (refusal) return socket.close(CLOSE.TRY_AGAIN_LATER, refusal);

      const connection = new SocketConnection(auth.principal, socket, config.ws.max_buffered_bytes, (c) =>
        realtime.hub.slowConsumer(c),
      );
      const log = request.log.child({ userId: auth.principal.id, connectionId: connection.id });
      socket.on('pong', () => connection.alive());
      socket.on('error', (error) => log.debug({ err: error }, 'websocket error'));
      socket.on('close', () => realtime.hub.remove(connection));
      const serve = createFrameServer(connection, socket, requestContext(request), log);

      realtime.hub.add(connection).then(
        () => {
          connection.send(
            encodeFrame({
              type: 'hello',
              connection_id: connection.id,
              user_id: auth.principal.id,
              server_time: new Date().toISOString(),
              heartbeat_ms: config.ws.heartbeat_ms,
            }),
          );
          receive = serve;
          for (const { data, isBinary } of early.splice(0)) serve(data, isBinary);
        },
        (error: unknown) => log.error({ err: error }, 'websocket not registered'),
      );
    },
  );

  /** Answers a connection's frames one at a time, in order: each frame with an id gets one ack or error. */
  function createFrameServer(
    connection: SocketConnection,
    socket: WebSocket,
    httpContext: RequestContext,
    log: FastifyRequest['log'],
  ) {
    let inFlight = 0;
    let queue = Promise.resolve();
    const reply = (frame: { type: string; [field: string]: unknown }) => connection.send(encodeFrame(frame));
    const fail = (error: unknown, ref: string | undefined) => {
      const described = describeError(error as Parameters<typeof describeError>[0]);
      if (described.statusCode >= 500 && described.code !== 'DATABASE_UNAVAILABLE')
        log.error({ err: error }, 'websocket frame failed');
      const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
      reply({
        type: 'error',
        ...(ref !== undefined ? { ref } : {}),
        code: described.code,
        message: described.message,
        ...(described.details?.length ? { details: described.details } : {}),
        ...(retryAfterMs !== undefined ? { retry_after_ms: retryAfterMs } : {}),
      });
    };

    const run = async (frame: ClientFrame) => {
      const context = { ...httpContext, requestId: `${httpContext.requestId}:${frame.id ?? frame.type}` };
      try {
        const result = await realtime.hub.runFor(connection.id, () =>
          realtime.handlers.handle(frame, connection.principal, context),
        );
        for (const extra of result.frames ?? []) {
          await connection.drained(config.ws.max_buffered_bytes / 2);
          reply(extra);
        }
        if (frame.id !== undefined) reply({ type: 'ack', ref: frame.id, ...result.ack });
      } catch (error) {
        fail(error, frame.id);
      }
    };

    return (data: RawData, isBinary: boolean) => {
      connection.alive();
      if (socket.readyState !== socket.OPEN) return;
      if (isBinary) return fail(new Errors.INVALID_FRAME(), undefined);
      const parsed = parseFrame(data.toString());
      if (!parsed.ok) return fail(parsed.error, parsed.ref);
      const { frame } = parsed;
      if (!realtime.hub.inspect(frame, connection)) return fail(new Errors.FORBIDDEN(), frame.id);
      if (inFlight >= MAX_FRAMES_IN_FLIGHT) {
        return fail(Object.assign(new Errors.RATE_LIMITED('a moment'), { retryAfterMs: 1000 }), frame.id);
      }
      inFlight += 1;
      queue = queue.then(() => run(frame)).finally(() => (inFlight -= 1));
    };
  }

  fastify.get(
    '/events',
    {
      schema: {
        tags: ['realtime'],
        summary:
          'Long-poll fallback: the same events as the socket. No cursor subscribes; then pass the cursor back',
        security,
        querystring: eventsQuery,
        response: { 200: eventsResponse, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      // The client went away: stop waiting for it.
      const aborted = new AbortController();
      reply.raw.once('close', () => aborted.abort());
      return realtime.polls.poll(
        request.principal,
        request.query.cursor,
        request.query.wait_s * 1000,
        aborted.signal,
      );
    },
  );
};

export default realtimeRoutes;
