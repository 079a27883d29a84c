// The realtime endpoints: POST /ws/ticket, the WebSocket at GET /ws/:userId, and the long-poll fallback
// GET /events. The socket authenticates itself (ticket or bearer) before the upgrade and answers a bad
// credential with a close code the client can act on (4401, 4403), since browsers see no HTTP status.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { RawData } from 'ws';
import { z } from 'zod';
import { Errors } from '../../errors.js';
import { bearerToken, requestContext } from '../../plugins/app/authenticate.js';
import { CLOSE, SocketConnection } from '../../realtime/connection.js';
import { FrameServer, MAX_FRAMES_IN_FLIGHT } from '../../realtime/frame-server.js';
import { encodeFrame, FRAME_TYPES } from '../../realtime/protocol.js';
import { errorResponses } from '../../schemas/error.js';
import { userRef } from '../../schemas/common.js';
import type { Principal } from '../../services/context.js';

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

/** Enough for every tab reconnecting many times over; far short of a flood. */
const TICKETS_PER_MINUTE = 60;
/** A busy long-poller comes back at once after each answer; this allows ten a second. */
const POLLS_PER_MINUTE = 600;

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
  // Per user: tickets and new long-poll subscriptions cost memory until they expire.
  const perUserLimit = (max: number) =>
    config.rate_limit.enabled
      ? {
          preHandler: fastify.rateLimit({
            max,
            timeWindow: 60_000,
            keyGenerator: (request) => `realtime:${request.principal?.id ?? request.ip}`,
          }),
        }
      : {};

  fastify.post(
    '/ws/ticket',
    {
      ...perUserLimit(TICKETS_PER_MINUTE),
      schema: {
        tags: ['realtime'],
        summary: 'A one-use ticket (30 s) to open the WebSocket from a browser: /ws/:userId?ticket=…',
        security,
        response: { 200: ticketResponse, ...errorResponses(401, 429) },
      },
    },
    async (request) => realtime.tickets.issue(request.principal),
  );

  const onSlowConsumer = (connection: SocketConnection) => realtime.hub.slowConsumer(connection);
  const currentPrincipal = (sessionId: string) => fastify.auth.sessionPrincipalFor(sessionId);
  const lazyLogger = (bindings: Record<string, string>) => {
    let child: FastifyBaseLogger | undefined;
    return () => (child ??= fastify.log.child(bindings));
  };

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
    const { ticket } = request.query as { ticket?: string };
    let principal: Principal | null = null;
    try {
      if (ticket) {
        const holder = await realtime.tickets.redeem(ticket);
        if (!holder) return unauthorized;
        principal = await fastify.auth.recheckSession(holder.sessionId);
        if (principal?.id !== holder.userId) return unauthorized;
      } else {
        const token = bearerToken(request);
        if (!token) return unauthorized;
        principal = await fastify.auth.authenticateSocket(token);
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
      // The socket checks its own credential (a ticket or a bearer token) below, and its bans.
      config: { public: true, ownAuthentication: true },
      schema: {
        tags: ['realtime'],
        summary: 'The WebSocket hub: ?ticket= (from POST /ws/ticket) or Authorization: Bearer',
        description: SOCKET_DESCRIPTION,
        params: z.strictObject({ userId: userRef }),
        querystring: z.object({ ticket: z.string().max(128).optional() }).loose(),
      },
      // After validation (a malformed request gets its 400 without using up a ticket), before the upgrade.
      preHandler: async (request) => {
        if (!originAllowed(request)) throw new Errors.ORIGIN_NOT_ALLOWED();
        request.socketAuth = await realtime.connectionWork.run(() =>
          authenticateSocket(request, request.params.userId),
        );
      },
    },
    (socket, request) => {
      // Frames that arrive before the connection is registered wait here (none is lost, within a bound).
      let early: { data: RawData; isBinary: boolean }[] | undefined;
      let receive: (data: RawData, isBinary: boolean) => void = (data, isBinary) => {
        early ??= [];
        if (early.length >= MAX_FRAMES_IN_FLIGHT)
          return socket.close(CLOSE.POLICY, 'too many frames before hello');
        early.push({ data, isBinary });
      };
      socket.on('message', (data, isBinary) => receive(data, isBinary));

      const auth = request.socketAuth!;
      const userId = 'principal' in auth ? auth.principal.id : null;
      fastify.detection?.socketOpened(request, userId);
      if (fastify.detection?.socketBan(userId, request.ip)) return socket.close(CLOSE.BLOCKED, 'blocked');
      if ('close' in auth) return socket.close(auth.close, auth.reason);
      const refusal = realtime.hub.refusal(auth.principal.id);
      if (refusal) return socket.close(CLOSE.TRY_AGAIN_LATER, refusal);

      // Everything kept per socket is kept 10,000 times: shared functions, and a logger made only when
      // something is logged.
      const connection = new SocketConnection(
        auth.principal,
        socket,
        config.ws.max_buffered_bytes,
        onSlowConsumer,
      );
      const log = lazyLogger({
        request_id: request.id,
        userId: auth.principal.id,
        connectionId: connection.id,
      });
      socket.on('pong', () => connection.alive());
      socket.on('error', (error) => {
        if ((error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
          realtime.hub.reportFault('oversized', connection);
        log().debug({ err: error }, 'websocket error');
      });
      socket.on('close', () => realtime.hub.remove(connection));
      const server = new FrameServer({
        connection,
        hub: realtime.hub,
        handlers: realtime.handlers,
        currentPrincipal,
        pacingBytes: config.ws.max_buffered_bytes / 2,
        context: requestContext(request),
        log,
      });

      realtime.hub.add(connection).then(
        (outcome) => {
          if (outcome !== 'added') return;
          connection.send(
            encodeFrame({
              type: 'hello',
              connection_id: connection.id,
              user_id: auth.principal.id,
              server_time: new Date().toISOString(),
              heartbeat_ms: config.ws.heartbeat_ms,
            }),
          );
          receive = (data, isBinary) => server.receive(data, isBinary);
          for (const { data, isBinary } of early ?? []) server.receive(data, isBinary);
          early = undefined;
        },
        (error: unknown) => {
          log().error({ err: error }, 'websocket not registered');
          connection.close(CLOSE.TRY_AGAIN_LATER, 'reconnect shortly');
        },
      );
    },
  );

  fastify.get(
    '/events',
    {
      ...perUserLimit(POLLS_PER_MINUTE),
      schema: {
        tags: ['realtime'],
        summary:
          'Long-poll fallback: the same events as the socket. No cursor subscribes; then pass the cursor back',
        security,
        querystring: eventsQuery,
        response: { 200: eventsResponse, ...errorResponses(400, 401, 429, 503) },
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
