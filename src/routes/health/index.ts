// Health for ops: no authentication. /health reads state kept by background checks, so it stays cheap.
// Redis being out of reach (several instances) makes it degraded: each instance still serves its users.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { Errors } from '../../errors.js';
import { errorResponses } from '../../schemas/error.js';
import { healthSchema, liveSchema, readySchema } from '../../schemas/health.js';
import { VERSION } from '../../version.js';

/** Above these the server still works but ops should look: status "degraded". */
const DEGRADED_DB_LATENCY_MS = 250;
const DEGRADED_EVENT_LOOP_P99_MS = 200;

const healthRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const { monitoring } = fastify.config;
  const startedAt = performance.now();
  const uptime = () => Math.round((performance.now() - startedAt) / 1000);

  fastify.get(
    '/health',
    {
      config: { public: true, accessLog: false },
      schema: {
        tags: ['health'],
        summary: 'Overall health: database, process figures (200 ok/degraded, 503 down)',
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_request, reply) => {
      if (!monitoring.enabled) return { status: 'ok' as const, version: VERSION, uptime_s: uptime() };
      const database = fastify.database.state;
      const system = fastify.system.snapshot();
      const down = database.status !== 'up';
      const { cluster, hub } = fastify.realtime;
      const redis = cluster.state();
      const hubStats = hub.stats();
      const degraded =
        redis === 'down' ||
        (database.latency_ms ?? 0) > DEGRADED_DB_LATENCY_MS ||
        system.event_loop_delay_p99_ms > DEGRADED_EVENT_LOOP_P99_MS;
      const status = down ? ('down' as const) : degraded ? ('degraded' as const) : ('ok' as const);
      return reply.code(down ? 503 : 200).send({
        status,
        version: VERSION,
        uptime_s: uptime(),
        checks: {
          database: {
            engine: database.engine,
            version: database.version,
            embedded: database.embedded,
            status: database.status,
            latency_ms: database.latency_ms,
            checked_at: database.checked_at?.toISOString() ?? null,
          },
          realtime: {
            redis,
            instance: cluster.instanceId,
            sockets: hubStats.sockets,
            long_polls: hubStats.polls,
            users: hubStats.users,
            slow_consumer_closes: hubStats.slow_consumer_closes,
            heartbeat_terminations: hubStats.heartbeat_terminations,
            connection_work: fastify.realtime.connectionWork.stats(),
          },
        },
        websocket: { connections: hubStats.sockets + hubStats.polls, users: hubStats.users },
        throughput: { messages_per_min: fastify.traffic.messagesPerMinute() },
        system,
        errors: { rate_per_min: fastify.traffic.errorsPerMinute() },
      });
    },
  );

  fastify.get(
    '/health/live',
    {
      config: { public: true, accessLog: false },
      schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: liveSchema } },
    },
    async () => ({ status: 'ok' as const }),
  );

  fastify.get(
    '/health/ready',
    {
      config: { public: true, accessLog: false },
      schema: {
        tags: ['health'],
        summary: 'Readiness: 503 DATABASE_UNAVAILABLE while the database cannot be reached',
        response: { 200: readySchema, ...errorResponses(503) },
      },
    },
    async () => {
      if (!fastify.database.isReady) throw new Errors.DATABASE_UNAVAILABLE();
      return { status: 'ready' as const };
    },
  );
};

export default healthRoutes;
