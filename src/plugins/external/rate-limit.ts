// @fastify/rate-limit, registered without a global limit: routes opt in (the 404 handler now; the security
// issue adds the global and per-action limits). RATE_LIMITING_ENABLED=false turns every limit off.
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Errors } from '../../errors.js';

/** Injected requests (tests, WebSocket upgrades through inject) may have no socket address. */
export function clientKey(request: FastifyRequest): string {
  return request.ip ?? request.socket?.remoteAddress ?? 'unknown';
}

export default fp(
  async function rateLimitPlugin(fastify) {
    await fastify.register(rateLimit, {
      global: false,
      keyGenerator: clientKey,
      errorResponseBuilder: (_request, context) => {
        const error = new Errors.RATE_LIMITED(context.after) as Error & { retryAfterMs?: number };
        error.retryAfterMs = context.ttl;
        return error;
      },
    });
  },
  { name: 'rate-limit' },
);
