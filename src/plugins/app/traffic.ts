// Rates for health: messages created and server errors (5xx) in the last minute, kept in memory by this
// process. One cheap onResponse hook and one event subscription; nothing is written anywhere. With
// MONITORING_ENABLED=false health does not show them, so nothing is counted.
import fp from 'fastify-plugin';
import { MinuteRate } from '../../lib/minute-rate.js';

declare module 'fastify' {
  interface FastifyInstance {
    traffic: { messagesPerMinute(): number; errorsPerMinute(): number };
  }
}

export default fp(
  async function trafficPlugin(fastify) {
    if (!fastify.config.monitoring.enabled) {
      fastify.decorate('traffic', { messagesPerMinute: () => 0, errorsPerMinute: () => 0 });
      return;
    }
    const messages = new MinuteRate();
    const serverErrors = new MinuteRate();
    const unsubscribe = fastify.events.subscribe((event) => {
      if (event.type === 'chat_message' || event.type === 'personal_message') messages.add();
    });
    fastify.addHook('onClose', async () => unsubscribe());
    fastify.addHook('onResponse', (_request, reply, done) => {
      if (reply.statusCode >= 500) serverErrors.add();
      done();
    });
    fastify.decorate('traffic', {
      messagesPerMinute: () => messages.perMinute(),
      errorsPerMinute: () => serverErrors.perMinute(),
    });
  },
  { name: 'traffic', dependencies: ['services'] },
);
