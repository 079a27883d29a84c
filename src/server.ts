// The only place that creates the Fastify instance, listens, and shuts down. `npm start` runs this file.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import closeWithGrace from 'close-with-grace';
import Fastify, { type FastifyHttpOptions, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import app from './app.js';
import {
  ConfigError,
  loadConfig,
  type Config,
  type LoadedConfig,
  type LoadConfigOptions,
} from './config/index.js';
import { createLoggers, type Loggers } from './logging/index.js';
import { AccessLogController } from './logging/log-controller.js';
import { EmbeddedDatabaseError } from './db/embedded.js';
import { sendError } from './plugins/app/errors.js';

export interface BuiltServer {
  app: FastifyInstance;
  loggers: Loggers;
  config: Readonly<Config>;
  /** Closes the app (sockets with 1001, in-flight requests, database), then flushes the logs. */
  close(): Promise<void>;
}

/** An extra plugin for buildServer, registered after the app and before ready: tests add routes this way. */
export interface ExtraPlugin {
  plugin: FastifyPluginAsync;
  prefix?: string;
}

/** An incoming x-request-id is kept only if it is short and plain, so it cannot forge log lines. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Node's own timeouts, set so REQUEST_TIMEOUT_MS holds promptly: Node's defaults (headers 60 s, checked
 * every 30 s) otherwise let a slowloris client or a body that never ends hold a connection for 20-90 s
 * whatever the request timeout says (test/reliability/abuse.test.ts). 0 keeps Node's defaults.
 */
export function httpTimeouts(requestTimeoutMs: number): http.ServerOptions {
  if (requestTimeoutMs <= 0) return {};
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeoutMs / 5))),
  };
}

export function serverOptions(config: Config, loggers: Loggers): FastifyHttpOptions<http.Server> {
  return {
    http: httpTimeouts(config.server.request_timeout_ms),
    loggerInstance: loggers.main,
    logController: new AccessLogController(),
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: config.server.body_limit,
    // Emails are valid user references in paths: up to 254 characters, three times that percent-encoded.
    routerOptions: { maxParamLength: 1024 },
    trustProxy: config.server.trust_proxy,
    requestTimeout: config.server.request_timeout_ms,
    return503OnClosing: true,
    // On close, idle keep-alive sockets go at once; busy ones finish their request first.
    forceCloseConnections: 'idle',
    frameworkErrors: (error, request, reply) => {
      sendError(request, reply, { statusCode: 400, code: 'BAD_REQUEST', message: error.message });
    },
  };
}

export async function buildServer(
  loaded: LoadedConfig,
  options: { isTTY?: boolean; plugins?: readonly ExtraPlugin[] } = {},
): Promise<BuiltServer> {
  const { config } = loaded;
  const loggers = createLoggers(config, { isTTY: options.isTTY });
  const fastify = Fastify(serverOptions(config, loggers));
  for (const warning of loaded.warnings) fastify.log.warn(warning);
  try {
    await fastify.register(app, { config, sources: loaded.sources, loggers });
    for (const { plugin, prefix } of options.plugins ?? []) await fastify.register(plugin, { prefix });
    await fastify.ready();
  } catch (error) {
    await fastify.close().catch(() => undefined);
    await loggers.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await fastify.close();
      await loggers.close();
    })());
  return { app: fastify, loggers, config, close };
}

/** Loads the configuration, builds the server, listens, and closes gracefully on SIGTERM/SIGINT. */
export async function start(options: LoadConfigOptions = {}): Promise<BuiltServer> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(options);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(`config error: ${problem}`);
      process.exit(2);
    }
    throw error;
  }
  const { config } = loaded;
  let server: BuiltServer;
  try {
    server = await buildServer(loaded, { isTTY: process.stdout.isTTY });
  } catch (error) {
    console.error(error instanceof EmbeddedDatabaseError ? error.message : error);
    process.exit(1);
  }
  const log = server.app.log;
  if (loaded.files.length) log.info({ files: loaded.files }, 'configuration files read');

  closeWithGrace(
    { delay: config.server.shutdown_timeout_ms, logger: { error: (m: unknown) => log.error(m) } },
    async ({ signal, err }) => {
      if (err) log.error({ err }, 'closing after an uncaught error');
      else log.info({ signal }, 'shutting down');
      await server.close();
    },
  );

  try {
    await server.app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? ' (is another server running? set PORT to use another port)' : '';
    log.fatal({ err: error }, `cannot listen on ${config.server.host}:${config.server.port}${hint}`);
    console.error(
      `cannot listen on ${config.server.host}:${config.server.port}: ${(error as Error).message}${hint}`,
    );
    await server.close();
    process.exit(1);
  }
  const { host: wsHost, port: wsPort } = config.ws;
  if (
    wsPort !== undefined &&
    !(wsPort === config.server.port && (wsHost ?? config.server.host) === config.server.host)
  ) {
    try {
      await listenForSockets(server, wsHost ?? config.server.host, wsPort);
    } catch (error) {
      console.error(
        `cannot listen for WebSockets on ${wsHost ?? config.server.host}:${wsPort}: ${(error as Error).message}`,
      );
      await server.close();
      process.exit(1);
    }
    log.info(
      { url: `ws://${wsHost ?? config.server.host}:${wsPort}/api/v2/ws/:userId` },
      'websocket listener open',
    );
  }
  log.info(
    {
      url: `http://${config.server.host}:${config.server.port}/api/v2`,
      docs: '/api/v2/docs',
      engine: server.app.database.state.engine,
    },
    'switchboard listening',
  );
  return server;
}

/**
 * WS_HOST/WS_PORT: a second listener for the same application, for deployments that route sockets to
 * their own port. Upgrades and requests there are handed to the app exactly as on the HTTP port (which
 * keeps accepting sockets too). `server.close()` stops it first; its sockets hear 1001 like the others.
 */
export async function listenForSockets(
  server: BuiltServer,
  host: string,
  port: number,
): Promise<http.Server> {
  const { app } = server;
  // The same bounds as the HTTP port (slow or idle clients cannot hold connections open).
  const listener = http.createServer(httpTimeouts(app.server.requestTimeout), (request, response) =>
    app.routing(request, response),
  );
  listener.keepAliveTimeout = app.server.keepAliveTimeout;
  listener.on('upgrade', (request, socket, head) => app.server.emit('upgrade', request, socket, head));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => {
      listener.off('error', reject);
      listener.on('error', (error) => app.log.error({ err: error }, 'websocket listener error'));
      resolve();
    });
  });
  const closeApp = server.close;
  server.close = async () => {
    // Stop accepting; its open sockets are the app's and close with it (awaiting them here would wait
    // for the very sockets the app is about to close).
    listener.close();
    listener.closeIdleConnections();
    await closeApp();
  };
  return listener;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await start();
}
