// GET /api/v2/metrics: Prometheus text format. Not registered when METRICS_ENABLED=false. With
// METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`; without one the endpoint is
// open like health (its labels hold no ids, names or content), and a production start warns about it.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { Errors } from '../errors.js';
import { sha256 } from '../lib/crypto.js';

const metricsRoutes: FastifyPluginAsync = async (fastify) => {
  const metrics = fastify.metrics;
  if (!metrics) return;
  const token = fastify.config.monitoring.metrics_token;
  const expected = token ? Buffer.from(sha256(token)) : null;
  if (!token && !fastify.config.server.debug) {
    fastify.log.warn(
      'GET /api/v2/metrics is open to anyone who can reach it: set METRICS_TOKEN to require a token',
    );
  }

  fastify.get(
    '/metrics',
    {
      schema: { tags: ['ops'], summary: 'Prometheus metrics (text format)', hide: false },
      // Checked here rather than by the session check: the scraper holds a static token, not a session.
      config: { public: true, accessLog: false },
    },
    async (request, reply) => {
      if (expected) {
        const match = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '');
        // Compared as fixed-length hashes, in constant time.
        const given = Buffer.from(sha256(match?.[1] ?? ''));
        if (!match || !timingSafeEqual(given, expected)) throw new Errors.UNAUTHORIZED();
      }
      return reply.type(metrics.contentType).send(await metrics.scrape());
    },
  );
};

export default metricsRoutes;
