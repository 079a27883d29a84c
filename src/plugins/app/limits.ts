// The per-user allowances the services enforce (fastify.limits): MESSAGES_PER_MINUTE for sends over
// REST and WebSocket together, FILE_UPLOADS_PER_HOUR for uploads. With REDIS_URL every instance counts
// against the same allowance; without it each instance counts its own. The services skip them when
// RATE_LIMITING_ENABLED=false.
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import {
  RedisSlidingWindowLimiter,
  SlidingWindowLimiter,
  type EventLimiter,
} from '../../lib/sliding-window.js';

declare module 'fastify' {
  interface FastifyInstance {
    limits: { messages: EventLimiter; uploads: EventLimiter };
  }
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

export default fp(
  async function limitsPlugin(fastify) {
    const { rate_limit: limits, redis: redisConfig } = fastify.config;
    const local = {
      messages: new SlidingWindowLimiter(limits.messages_per_minute, MINUTE_MS),
      uploads: new SlidingWindowLimiter(limits.file_uploads_per_hour, HOUR_MS),
    };
    if (!redisConfig.url) {
      fastify.decorate('limits', local);
      return;
    }
    const redis = new Redis(redisConfig.url, {
      connectTimeout: 1000,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
    });
    redis.on('error', () => undefined); // the calls that fail report it (once) below
    let warned = false;
    const onError = (error: unknown) => {
      if (!warned)
        fastify.log.warn({ err: error }, 'rate limits: Redis unavailable, counting on this instance');
      warned = true;
    };
    fastify.decorate('limits', {
      messages: new RedisSlidingWindowLimiter(
        redis,
        'switchboard:limit:messages:',
        limits.messages_per_minute,
        MINUTE_MS,
        local.messages,
        onError,
      ),
      uploads: new RedisSlidingWindowLimiter(
        redis,
        'switchboard:limit:uploads:',
        limits.file_uploads_per_hour,
        HOUR_MS,
        local.uploads,
        onError,
      ),
    });
    fastify.addHook('onClose', async () => void redis.disconnect());
  },
  { name: 'limits', dependencies: ['config'] },
);
