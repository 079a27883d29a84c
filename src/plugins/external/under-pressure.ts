// Sheds load with 503 SERVER_OVERLOADED and Retry-After when the event loop is saturated, instead of
// letting every request slow down together.
import underPressure from '@fastify/under-pressure';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { Errors } from '../../errors.js';

const RETRY_AFTER_S = 5;

export default fp(
  async function underPressurePlugin(fastify, opts: { config: Config }) {
    const limit = opts.config.server.max_event_loop_delay_ms;
    await fastify.register(underPressure, {
      maxEventLoopDelay: limit > 0 ? limit : undefined,
      retryAfter: RETRY_AFTER_S,
      pressureHandler: (request, reply, type, value) => {
        request.log.warn({ type, value }, 'under pressure: request shed');
        void reply.header('retry-after', String(RETRY_AFTER_S));
        throw new Errors.SERVER_OVERLOADED();
      },
    });
  },
  { name: 'under-pressure' },
);
