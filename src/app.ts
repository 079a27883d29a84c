// The whole application as one plugin. Registration order matters and is spelled out here:
// configuration, then HTTP hardening, then our shared dependencies, then the routes.
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Config, ConfigSource } from './config/index.js';
import type { Loggers } from './logging/index.js';
import configPlugin from './plugins/app/config.js';
import databasePlugin from './plugins/app/database.js';
import detectionPlugin from './plugins/app/detection.js';
import filesPlugin from './plugins/app/files.js';
import limitsPlugin from './plugins/app/limits.js';
import analyticsPlugin from './plugins/app/analytics.js';
import metricsPlugin from './plugins/app/metrics.js';
import opsAlertsPlugin from './plugins/app/ops-alerts.js';
import realtimePlugin from './plugins/app/realtime.js';
import trafficPlugin from './plugins/app/traffic.js';
import servicesPlugin from './plugins/app/services.js';
import errorsPlugin from './plugins/app/errors.js';
import routeTablePlugin from './plugins/app/route-table.js';
import systemMonitorPlugin from './plugins/app/system-monitor.js';
import corsPlugin from './plugins/external/cors.js';
import helmetPlugin from './plugins/external/helmet.js';
import jwtPlugin from './plugins/external/jwt.js';
import rateLimitPlugin from './plugins/external/rate-limit.js';
import swaggerPlugin from './plugins/external/swagger.js';
import underPressurePlugin from './plugins/external/under-pressure.js';
import websocketPlugin from './plugins/external/websocket.js';
import apiRoutes from './routes/index.js';
import dashboardRoutes from './routes/dashboard.js';

export interface AppOptions {
  config: Readonly<Config>;
  sources: Readonly<Record<string, ConfigSource>>;
  /** The process's loggers (Fastify's own is `loggers.main`); services write security and audit events. */
  loggers: Loggers;
}

const app: FastifyPluginAsync<AppOptions> = async (fastify, opts) => {
  const { config } = opts;
  fastify.decorate('loggers', opts.loggers);
  await fastify.register(configPlugin, { config, sources: opts.sources });
  await fastify.register(routeTablePlugin);
  await fastify.register(helmetPlugin, { config });
  await fastify.register(corsPlugin, { config });
  await fastify.register(underPressurePlugin, { config });
  await fastify.register(rateLimitPlugin, { config });
  await fastify.register(errorsPlugin, { config });
  await fastify.register(websocketPlugin, { config });
  await fastify.register(swaggerPlugin);

  await fastify.register(systemMonitorPlugin);
  await fastify.register(databasePlugin, { config });
  await fastify.register(jwtPlugin, { config });
  await fastify.register(limitsPlugin);
  await fastify.register(servicesPlugin);
  await fastify.register(filesPlugin);
  await fastify.register(realtimePlugin);
  await fastify.register(metricsPlugin);
  await fastify.register(trafficPlugin);
  await fastify.register(opsAlertsPlugin);
  await fastify.register(analyticsPlugin);
  // After everything it reports to (audit, metrics, the hub); before the routes its hooks cover.
  await fastify.register(detectionPlugin);

  await fastify.register(apiRoutes, { prefix: '/api/v2' });
  await fastify.register(dashboardRoutes);
};

declare module 'fastify' {
  interface FastifyInstance {
    loggers: Loggers;
  }
}

export default fp(app, { name: 'switchboard' });
