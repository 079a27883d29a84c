// Prometheus metrics (prom-client) in a registry of our own, served at GET /api/v2/metrics when
// METRICS_ENABLED. Hot paths stay cheap: HTTP requests are observed in one onResponse hook; database
// commands through the driver's command monitoring; WebSocket traffic is counted by the hub as plain
// numbers and read only when Prometheus scrapes. Every label value is bounded: route templates (never
// URLs or ids), methods, status codes, error codes, frame and event types, channel kinds, command names.
import fp from 'fastify-plugin';
import client from 'prom-client';
import type { RealtimeEvent } from '../../services/events.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The metrics registry, or null when METRICS_ENABLED=false. */
    metrics: Metrics | null;
  }
}

export interface Metrics {
  /** The Prometheus text exposition of every metric. */
  scrape(): Promise<string>;
  contentType: string;
  /** For the detection plugin (security issue): one event of a rule with the action taken. */
  detectionEvent(rule: string, action: string): void;
}

/** Command names the driver reports, beyond which a command is counted as `other`. */
const DATABASE_OPERATIONS = new Set([
  'find',
  'insert',
  'update',
  'delete',
  'findAndModify',
  'aggregate',
  'count',
  'distinct',
  'getMore',
  'createIndexes',
  'ping',
  'hello',
  'isMaster',
  'killCursors',
  'endSessions',
  'listCollections',
  'dropDatabase',
]);

export default fp(
  async function metricsPlugin(fastify) {
    if (!fastify.config.monitoring.metrics_enabled) {
      fastify.decorate('metrics', null);
      return;
    }
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry });

    const httpDuration = new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template, method and status',
      labelNames: ['route', 'method', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    const errors = new client.Counter({
      name: 'http_errors_total',
      help: 'Error responses by stable error code',
      labelNames: ['code'],
      registers: [registry],
    });
    const rateLimited = new client.Counter({
      name: 'http_rate_limited_total',
      help: 'Requests refused with 429 by route template',
      labelNames: ['route'],
      registers: [registry],
    });
    fastify.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      httpDuration.observe(
        { route, method: request.method, status_code: reply.statusCode },
        reply.elapsedTime / 1000,
      );
      if (request.errorCode) errors.inc({ code: request.errorCode });
      if (reply.statusCode === 429) rateLimited.inc({ route });
      done();
    });

    const databaseDuration = new client.Histogram({
      name: 'db_operation_duration_seconds',
      help: 'Database command duration by command name',
      labelNames: ['operation', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    const observeCommand =
      (outcome: 'ok' | 'failed') => (event: { commandName: string; duration: number }) => {
        const operation = DATABASE_OPERATIONS.has(event.commandName) ? event.commandName : 'other';
        databaseDuration.observe({ operation, outcome }, event.duration / 1000);
      };
    fastify.mongo.on('commandSucceeded', observeCommand('ok'));
    fastify.mongo.on('commandFailed', observeCommand('failed'));

    const messagesCreated = new client.Counter({
      name: 'messages_created_total',
      help: 'Messages created by channel kind',
      labelNames: ['channel_kind'],
      registers: [registry],
    });
    const unsubscribe = fastify.events.subscribe((event: RealtimeEvent) => {
      if (event.type === 'chat_message' || event.type === 'personal_message') {
        messagesCreated.inc({ channel_kind: String(event.channel_kind) });
      }
    });
    fastify.addHook('onClose', async () => unsubscribe());

    const detection = new client.Counter({
      name: 'detection_events_total',
      help: 'Detection events by rule and action taken',
      labelNames: ['rule', 'action'],
      registers: [registry],
    });

    // WebSocket figures, read from the hub when scraped.
    new client.Gauge({
      name: 'ws_connections',
      help: 'Open WebSocket connections (and long-poll subscriptions) of this process',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        const stats = fastify.realtime.hub.stats();
        this.set({ kind: 'socket' }, stats.sockets);
        this.set({ kind: 'poll' }, stats.polls);
      },
    });
    new client.Gauge({
      name: 'ws_users',
      help: 'Distinct users connected to this process',
      registers: [registry],
      collect() {
        this.set(fastify.realtime.hub.stats().users);
      },
    });
    const framesIn = deltaCounter(registry, 'ws_frames_in_total', 'Frames received by type', 'type');
    const framesOut = deltaCounter(registry, 'ws_frames_out_total', 'Events sent out by type', 'type');
    const deliveries = deltaCounter(registry, 'ws_deliveries_total', 'Frames written to sockets', null);

    const metrics: Metrics = {
      scrape: () => {
        // The hub's totals are brought in first, then everything is rendered.
        const totals = fastify.realtime.hub.trafficTotals();
        framesIn.update(totals.framesIn);
        framesOut.update(totals.framesOut);
        deliveries.update(new Map([['', totals.deliveries]]));
        return registry.metrics();
      },
      contentType: registry.contentType,
      detectionEvent: (rule, action) => detection.inc({ rule, action }),
    };
    fastify.decorate('metrics', metrics);
  },
  { name: 'metrics', dependencies: ['config', 'database', 'services', 'realtime'] },
);

/**
 * A Prometheus counter fed from totals kept elsewhere (the hub counts with plain numbers): each update
 * adds what the totals grew by since the last one.
 */
function deltaCounter(
  registry: client.Registry,
  name: string,
  help: string,
  label: string | null,
): { update(totals: ReadonlyMap<string, number>): void } {
  const counter = new client.Counter({ name, help, labelNames: label ? [label] : [], registers: [registry] });
  const seen = new Map<string, number>();
  return {
    update(totals) {
      for (const [key, total] of totals) {
        const grown = total - (seen.get(key) ?? 0);
        if (grown <= 0) continue;
        seen.set(key, total);
        if (label) counter.inc({ [label]: key }, grown);
        else counter.inc(grown);
      }
    },
  };
}
