// The process's loggers: `main` (Fastify's logger), plus `security` and `audit`, which later issues use for
// their events. All three share one transport worker (see file-transport.mjs) that writes the rotated files
// under LOG_DIR, so logging never waits on the disk.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from '../config/index.js';

export type { Logger } from 'pino';

export interface Loggers {
  main: Logger;
  /** Security events only: logs/security.log. */
  security: Logger;
  /** Audit events only: logs/audit.log. */
  audit: Logger;
  /** Flushes every file and stops the worker; call last, after the app has closed. */
  close(): Promise<void>;
}

/**
 * Credentials never reach a log line. Paths are explicit (no wildcards): wildcard redaction cost more per
 * line than the rest of the logging, and we control what we log — request bodies are never logged, and
 * credentials only ever appear at these places.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'request.headers.cookie',
  'request.headers["x-api-key"]',
  'request.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'headers.cookie',
  'password',
  'current_password',
  'new_password',
  'token',
  'access_token',
  'refresh_token',
  'ticket',
  'secret',
  'secret_key',
  'set_password_token',
];

const CLOSE_TIMEOUT_MS = 5_000;
const TRANSPORT = fileURLToPath(new URL('./file-transport.mjs', import.meta.url));

export function loggerOptions(config: Config): LoggerOptions {
  return {
    level: config.logging.level,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
}

export interface CreateLoggersOptions {
  /** Whether stdout is a terminal; decides `console: auto`. */
  isTTY?: boolean;
}

export function createLoggers(config: Config, options: CreateLoggersOptions = {}): Loggers {
  const consoleMode =
    config.logging.console === 'auto' ? (options.isTTY ? 'pretty' : 'json') : config.logging.console;
  const transport = pino.transport({
    target: TRANSPORT,
    options: {
      dir: path.resolve(config.logging.dir),
      size: config.logging.max_size,
      frequency: config.logging.frequency,
      retention: config.logging.retention,
      console: consoleMode,
    },
  });
  const main = pino(loggerOptions(config), transport);
  // Security and audit events are kept whatever LOG_LEVEL says: they are records, not diagnostics.
  const eventLevel = config.logging.level === 'silent' ? 'silent' : 'info';
  const security = main.child({ stream: 'security' }, { level: eventLevel });
  const audit = main.child({ stream: 'audit' }, { level: eventLevel });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      // The worker is unref'd, so nothing else keeps the process alive while it flushes: this timer does
      // (and bounds the wait if the worker is already gone).
      const keepAlive = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      transport.once('close', () => {
        clearTimeout(keepAlive);
        resolve();
      });
      main.flush();
      transport.end();
    }));
  return { main, security, audit, close };
}
