// Analytics (services/analytics.ts) as a shared dependency: fed by error responses, the hub's sockets,
// the messages the services publish and the files stored; written every FLUSH_INTERVAL_MS, old buckets
// swept hourly. Off with MONITORING_ENABLED=false.
import fp from 'fastify-plugin';
import { AnalyticsRepository } from '../../repositories/analytics.js';
import { SessionsRepository } from '../../repositories/sessions.js';
import { UsersRepository } from '../../repositories/users.js';
import { AnalyticsService } from '../../services/analytics.js';

const FLUSH_INTERVAL_MS = 10_000;
const SWEEP_INTERVAL_MS = 60 * 60 * 1000;

declare module 'fastify' {
  interface FastifyInstance {
    /** Null when MONITORING_ENABLED=false. */
    analytics: AnalyticsService | null;
  }
}

export default fp(
  async function analyticsPlugin(fastify) {
    const { monitoring } = fastify.config;
    if (!monitoring.enabled) {
      fastify.decorate('analytics', null);
      return;
    }
    const { hub, cluster } = fastify.realtime;
    const analytics = new AnalyticsService({
      analytics: new AnalyticsRepository(fastify.db),
      instance: cluster.instanceId,
      retentionDays: monitoring.analytics_retention_days,
      currentSockets: () => hub.stats().sockets,
      people: { users: new UsersRepository(fastify.db), sessions: new SessionsRepository(fastify.db) },
    });
    fastify.decorate('analytics', analytics);

    fastify.addHook('onResponse', (request, _reply, done) => {
      if (request.errorCode)
        analytics.recordError(request.errorCode, request.routeOptions.url ?? 'unmatched', request.id);
      done();
    });
    const unsubscribe = fastify.events.subscribe((event) => {
      if (event.type !== 'chat_message' && event.type !== 'personal_message') return;
      analytics.recordMessage(String(event.channel_kind), String(event.channel_id), String(event.sender_id));
    });
    fastify.files.onStored((file) => analytics.recordUpload(file.size));
    hub.observeConnections({
      opened: (openSockets, userId) => analytics.connectionOpened(openSockets, userId),
      closed: (durationMs) => analytics.connectionClosed(durationMs),
    });

    let flushing: Promise<void> | undefined;
    const flush = () =>
      (flushing ??= analytics
        .flush()
        .catch((error: unknown) => fastify.log.warn({ err: error }, 'analytics not written'))
        .finally(() => (flushing = undefined)));
    const flushTimer = setInterval(() => {
      if (fastify.database.isReady) void flush();
    }, FLUSH_INTERVAL_MS);
    flushTimer.unref();
    const sweepTimer = setInterval(() => {
      if (!fastify.database.isReady) return;
      analytics.sweep().catch((error: unknown) => fastify.log.warn({ err: error }, 'analytics sweep failed'));
    }, SWEEP_INTERVAL_MS);
    sweepTimer.unref();
    fastify.addHook('onClose', async () => {
      unsubscribe();
      clearInterval(flushTimer);
      clearInterval(sweepTimer);
      await flushing;
      if (fastify.database.isReady) await flush(); // what was counted since the last flush
    });
  },
  { name: 'analytics', dependencies: ['database', 'services', 'files', 'realtime'] },
);
