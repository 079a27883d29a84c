// Builds the real application for a test file: real database server (from global-setup), its own database
// name, log files in a temporary folder, and a known secret. Close it in afterAll (or use `useTestApp`).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { buildServer, type BuiltServer } from '../src/server.js';

export const TEST_SECRET = 'test-secret-key-that-is-long-enough-0123456789';

export interface TestApp extends BuiltServer {
  logDir: string;
  databaseName: string;
  /**
   * Drops the test database (unless `keepDatabase`), closes the app and flushes the logs; the log folder
   * stays, to be read.
   */
  closeKeepingLogs(): Promise<void>;
  /** closeKeepingLogs(), then removes the log folder. */
  close(): Promise<void>;
}

/** Where `TestAppOptions.routes` are mounted. */
export const TEST_ROUTES_PREFIX = '/api/v2/_test';

export interface TestAppOptions {
  /** Test-only routes under TEST_ROUTES_PREFIX, registered after the app and before ready. */
  routes?: FastifyPluginAsync;
  /** Called with the (empty) log folder before the app starts, e.g. to leave files from an earlier run. */
  prepareLogDir?: (dir: string) => void;
  /** Opens this database instead of a fresh one: a second app on a first one's data (a restart). */
  databaseName?: string;
  /** Leaves the database in place on close, for an app that opens it next (see `databaseName`). */
  keepDatabase?: boolean;
}

type Overrides = Record<string, Record<string, unknown>>;

/** A fresh database name: test files never see each other's data. */
export function uniqueDatabaseName(): string {
  return `sbtest_${randomBytes(6).toString('hex')}`;
}

export function testConfigOverrides(
  extra: Overrides = {},
  databaseName: string = uniqueDatabaseName(),
): {
  overrides: Overrides;
  logDir: string;
  databaseName: string;
} {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-test-logs-'));
  const base: Overrides = {
    server: { debug: false },
    auth: { secret_key: TEST_SECRET },
    database: { url: inject('mongoUrl'), name: databaseName, timeout_ms: 1500 },
    logging: { dir: logDir, console: 'off', level: 'info' },
    // Uploads of a test go with its logs (removed on close), never into the repository's uploads/.
    files: { upload_path: path.join(logDir, 'uploads') },
    monitoring: { health_check_interval_s: 0.2 },
    // Every test client is 127.0.0.1 (an office behind one address, thousands of logins a minute): the
    // per-address and per-principal limits get their own tests (test/security/rate-limits.test.ts).
    rate_limit: { login_per_minute: 1_000_000, requests_per_minute: 1_000_000 },
    // Detection scores and records every request of every test, but only test/security lets it alert
    // and ban: elsewhere tests forge tokens and fail logins from that one address on purpose.
    security: { alert_score: 99_999, block_score: 100_000 },
  };
  const overrides: Overrides = { ...base };
  for (const [group, values] of Object.entries(extra)) overrides[group] = { ...base[group], ...values };
  return { overrides, logDir, databaseName };
}

export async function buildTestApp(extra: Overrides = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const { overrides, logDir, databaseName } = testConfigOverrides(extra, options.databaseName);
  const removeLogDir = () => fs.rmSync(logDir, { recursive: true, force: true });
  let server: BuiltServer;
  try {
    options.prepareLogDir?.(logDir);
    const loaded = loadConfig({ env: {}, cwd: logDir, overrides });
    const plugins = options.routes ? [{ plugin: options.routes, prefix: TEST_ROUTES_PREFIX }] : [];
    server = await buildServer(loaded, { plugins });
  } catch (error) {
    removeLogDir();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const closeKeepingLogs = () =>
    (closing ??= (async () => {
      if (!options.keepDatabase) await server.app.db.dropDatabase().catch(() => undefined);
      await server.close();
    })());
  return {
    ...server,
    logDir,
    databaseName,
    closeKeepingLogs,
    close: async () => {
      await closeKeepingLogs();
      removeLogDir();
    },
  };
}

/** Builds one app for the whole file and closes it afterwards. */
export function useTestApp(extra: Overrides = {}, options: TestAppOptions = {}): () => TestApp {
  let testApp: TestApp | undefined;
  beforeAll(async () => {
    testApp = await buildTestApp(extra, options);
  });
  afterAll(async () => {
    await testApp?.close();
  });
  return () => {
    if (!testApp) throw new Error('the test app is not built yet (use it inside a test or hook)');
    return testApp;
  };
}
