// The database a benchmark's app uses: MONGO_URL when the benchmark's environment sets it (a database of
// our own on it, dropped at the end), else the project's embedded server started here, in a temporary
// folder, stopped and removed at the end.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { loadConfig } from '../../src/config/index.js';
import { startEmbeddedDatabase } from '../../src/db/embedded.js';
import { makeTempDir, onCleanup } from './cleanup.js';

export interface BenchDatabase {
  url: string;
  /** A fresh database name for this run. */
  name: string;
  /** 'external' (MONGO_URL), 'mongod' or 'ferretdb'. */
  engine: string;
  stop(): Promise<void>;
}

export async function startBenchDatabase(bench: string): Promise<BenchDatabase> {
  const name = `bench_${bench}_${randomBytes(4).toString('hex')}`;
  const external = process.env.MONGO_URL;
  if (external) {
    const stop = async () => {
      const client = new MongoClient(external, { serverSelectionTimeoutMS: 5_000 });
      try {
        await client.db(name).dropDatabase();
      } finally {
        await client.close();
      }
    };
    onCleanup(`drop database ${name}`, stop);
    return { url: external, name, engine: 'external', stop };
  }
  // Only the defaults matter here (the cache folder where FerretDB lives); not the user's settings.
  const dataDir = makeTempDir(`switchboard-bench-${bench}-db`);
  const { config } = loadConfig({ env: {}, cwd: dataDir });
  const embedded = await startEmbeddedDatabase({
    dataDir,
    cacheDir: config.database.cache_dir,
    prefer: 'auto',
    log: (message) => console.error(`[database] ${message}`),
  });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= embedded.stop());
  // At a sudden exit only synchronous work runs: kill FerretDB by the pid file it keeps in its folder.
  const killFerretDb = () => {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'ferretdb', 'ferretdb.pid'), 'utf8'));
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, 'SIGKILL');
  };
  onCleanup(`stop embedded ${embedded.engine}`, stop, killFerretDb);
  return { url: embedded.url, name, engine: embedded.engine, stop };
}
