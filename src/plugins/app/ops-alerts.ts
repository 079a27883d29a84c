// Runs the ops alerts (services/ops-alerts.ts) every HEALTH_CHECK_INTERVAL seconds, from the figures
// health already keeps. Off with MONITORING_ENABLED=false.
import fp from 'fastify-plugin';
import { OpsAlerts } from '../../services/ops-alerts.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Null when MONITORING_ENABLED=false. */
    opsAlerts: OpsAlerts | null;
  }
}

export default fp(
  async function opsAlertsPlugin(fastify) {
    const { monitoring } = fastify.config;
    if (!monitoring.enabled) {
      fastify.decorate('opsAlerts', null);
      return;
    }
    const alerts = new OpsAlerts(
      [
        {
          name: 'error_rate',
          what: 'server errors per minute',
          threshold: monitoring.alert_error_rate_per_min,
          read: () => fastify.traffic.errorsPerMinute(),
        },
        {
          name: 'event_loop_delay',
          what: 'event-loop delay p99 (ms)',
          threshold: monitoring.alert_event_loop_delay_ms,
          read: () => fastify.system.snapshot().event_loop_delay_p99_ms,
        },
        {
          name: 'database_latency',
          what: 'database ping (ms)',
          threshold: monitoring.alert_db_latency_ms,
          read: () => fastify.database.state.latency_ms,
        },
      ],
      { events: fastify.events, adminIds: () => fastify.users.activeAdminIds(), log: fastify.log },
    );
    fastify.decorate('opsAlerts', alerts);
    let checking: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      checking ??= alerts
        .evaluate()
        .catch((error: unknown) => fastify.log.warn({ err: error }, 'ops alert check failed'))
        .finally(() => (checking = undefined));
    }, monitoring.health_check_interval_s * 1000);
    timer.unref();
    fastify.addHook('onClose', async () => {
      clearInterval(timer);
      await checking;
    });
  },
  { name: 'ops-alerts', dependencies: ['services', 'traffic', 'system-monitor', 'database'] },
);
