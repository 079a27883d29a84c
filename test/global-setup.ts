// Starts one database server for the whole test run, by the project's own resolution: TEST_MONGO_URL
// (or MONGO_URL) when set, else the embedded server (mongod where it can be had, FerretDB here).
// Each test file then works in its own database on it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../src/config/index.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../src/db/embedded.js';
import { ensureChromium } from '../scripts/chromium.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUrl: string;
    databaseEngine: string;
    chromiumPath: string;
  }
}

let embedded: EmbeddedDatabase | undefined;
let dataDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  // The dashboard test's browser (installed here once when it can be: see scripts/chromium.ts).
  project.provide(
    'chromiumPath',
    ensureChromium((message) => console.warn(`[browser] ${message}`)),
  );
  // Only the settings that say where the embedded database comes from; nothing else of the environment.
  const { config } = loadConfig({
    env: { CACHE_DIR: process.env.CACHE_DIR, EMBEDDED_DB: process.env.EMBEDDED_DB },
    cwd: os.tmpdir(),
  });
  const external = process.env.TEST_MONGO_URL ?? process.env.MONGO_URL;
  if (external) {
    project.provide('mongoUrl', external);
    project.provide('databaseEngine', 'external');
    return;
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-test-db-'));
  embedded = await startEmbeddedDatabase({
    dataDir,
    cacheDir: config.database.cache_dir,
    prefer: config.database.embedded,
    log: (message) => console.warn(`[test database] ${message}`),
  });
  console.warn(`[test database] embedded ${embedded.engine} at ${embedded.url}`);
  project.provide('mongoUrl', embedded.url);
  project.provide('databaseEngine', embedded.engine);
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
