// @fastify/rate-limit: a global limit of RATE_LIMIT_PER_MINUTE requests per principal (the signed-in
// user, else the address) on every route but health and metrics, plus the routes' own limits (login, the
// 404 handler, socket tickets). Counted in Redis with REDIS_URL, so the limits hold across instances; if
// Redis fails, requests are let through rather than refused. RATE_LIMITING_ENABLED=false turns them off.
// Answers carry x-ratelimit-limit/-remaining/-reset, and a 429 carries retry-after.
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import type { Config } from '../../config/index.js';
import { Errors } from '../../errors.js';

/** Injected requests (tests, WebSocket upgrades through inject) may have no socket address. */
export function clientKey(request: FastifyRequest): string {
  return request.ip ?? request.socket?.remoteAddress ?? 'unknown';
}

/** The user once authenticated (the global limit runs after authentication), else the address. */
function principalKey(request: FastifyRequest): string {
  const userId = (request.principal as { id?: string } | null)?.id;
  return userId ? `user:${userId}` : `ip:${clientKey(request)}`;
}

/** Probes and scrapes are never limited: a limit there would look like an outage. */
function exempt(request: FastifyRequest): boolean {
  const url = request.routeOptions.url ?? '';
  return url.startsWith('/api/v2/health') || url === '/api/v2/metrics';
}

export default fp(
  async function rateLimitPlugin(fastify, opts: { config: Config }) {
    const { rate_limit: limits, redis: redisConfig } = opts.config;
    const redis = redisConfig.url
      ? new Redis(redisConfig.url, {
          connectTimeout: 500,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
        })
      : undefined;
    redis?.on('error', () => undefined); // skipOnError lets requests through; the cluster reports Redis health
    await fastify.register(rateLimit, {
      global: limits.enabled,
      max: limits.requests_per_minute,
      timeWindow: 60_000,
      // After authentication, so a signed-in user has a bucket of their own behind a shared address.
      hook: 'preHandler',
      keyGenerator: principalKey,
      allowList: (request) => exempt(request),
      ...(redis ? { redis, nameSpace: 'switchboard:ratelimit:', skipOnError: true } : {}),
      errorResponseBuilder: (_request, context) => {
        const error = new Errors.RATE_LIMITED(context.after) as Error & { retryAfterMs?: number };
        error.retryAfterMs = context.ttl;
        return error;
      },
    });
    if (redis) fastify.addHook('onClose', async () => void redis.disconnect());
  },
  { name: 'rate-limit' },
);

/** A route's own limit per address (login, token refresh), when rate limiting is on. */
export function perAddressLimit(config: Config, max: number) {
  return config.rate_limit.enabled ? { rateLimit: { max, timeWindow: 60_000, keyGenerator: clientKey } } : {};
}
