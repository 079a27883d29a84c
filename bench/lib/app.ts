// Switchboard itself as a benchmark target: the real server (src/server.ts `start()`: config loading,
// every plugin, production logging to files) in its own process, in a temporary working folder so that no
// .env or config/ of the checkout changes what is measured.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_KEYS } from '../../src/config/schema.js';
import { makeTempDir } from './cleanup.js';
import { startServerProcess, type ServerProcess } from './server.js';

export const APP_SERVER_SCRIPT = fileURLToPath(new URL('../servers/app.ts', import.meta.url));

export interface AppServer extends ServerProcess {
  /** The settings the app was started with (SECRET_KEY masked), for the report. */
  settings: Record<string, string>;
  logDir: string;
  /** Bytes currently in the log folder (rotated files included). */
  logBytes(): number;
}

/**
 * The benchmark's own environment without anything that configures Switchboard or Node, so the shell a
 * benchmark is started from cannot change what is measured.
 */
/** The first admin the benchmarks start the app with (as ADMIN_EMAIL and ADMIN_PASSWORD). */
export const BENCH_ADMIN = { email: 'bench.admin@example.com', password: 'Copper-kettle-meadow-5521' };

/** Attempts at signing in: a server just started on a busy machine may shed load for a moment. */
const LOGIN_ATTEMPTS = 10;

/**
 * Logs the benchmark admin in to `app`; returns an access token. A 503 (the app sheds load while its
 * event loop is saturated, as two copies starting at once on 2 CPUs can make it) is retried after its
 * Retry-After, as a client would.
 */
export async function loginBenchAdmin(app: AppServer): Promise<string> {
  for (let attempt = 1; ; attempt += 1) {
    const response = await fetch(app.url('/api/v2/auth/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(BENCH_ADMIN),
    });
    if (response.status === 200) return ((await response.json()) as { access_token: string }).access_token;
    const body = await response.text();
    if (response.status !== 503 || attempt === LOGIN_ATTEMPTS)
      throw new Error(`login failed: ${response.status} ${body}`);
    const retryAfterS = Number(response.headers.get('retry-after')) || 1;
    await new Promise((resolve) => setTimeout(resolve, retryAfterS * 1000));
  }
}

export function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of [...Object.keys(ENV_KEYS), 'CONFIG_DIR', 'NODE_OPTIONS']) delete env[key];
  return env;
}

/**
 * Production settings: DEBUG=false with a real secret, logging at info to files (no console), every plugin
 * with its default. `settings` adds to or replaces these (a benchmark that needs, say, rate limits off
 * must say so in its own report).
 */
export async function startAppServer(options: {
  database: { url: string; name: string };
  settings?: Record<string, string>;
  name?: string;
  /** Extra Node flags for the server process, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[];
}): Promise<AppServer> {
  const home = makeTempDir('switchboard-bench-app');
  const settings = productionSettings(home, options.database, options.settings);
  const logDir = settings.LOG_DIR!;
  const secret = randomBytes(48).toString('base64url');
  const server = await startServerProcess({
    name: options.name ?? 'app',
    script: APP_SERVER_SCRIPT,
    cwd: home,
    env: { ...cleanEnvironment(), ...settings, SECRET_KEY: secret, CONFIG_DIR: path.join(home, 'config') },
    // First start compiles the TypeScript and may create indexes.
    readyTimeoutMs: 90_000,
    nodeArgs: options.nodeArgs,
  });
  return {
    ...server,
    settings: { ...settings, SECRET_KEY: '[set, 64 chars]' },
    logDir,
    logBytes: () => folderBytes(logDir),
  };
}

/** The production settings every benchmark starts the app with, its files under `home`. */
export function productionSettings(
  home: string,
  database: { url: string; name: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DEBUG: 'false',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    LOG_CONSOLE: 'off',
    LOG_DIR: path.join(home, 'logs'),
    MONGO_URL: database.url,
    DB_NAME: database.name,
    DATA_DIR: path.join(home, 'data'),
    UPLOAD_PATH: path.join(home, 'uploads'),
    // A benchmark is one client (one user, one address) doing the work of thousands: the per-principal
    // and per-address limits would refuse it. What limiting costs is measured by bench:security.
    RATE_LIMIT_PER_MINUTE: '10000000',
    LOGIN_RATE_LIMIT: '1000000',
    ...extra,
  };
}

function folderBytes(dir: string): number {
  let total = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}
