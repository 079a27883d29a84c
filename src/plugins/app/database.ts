// The MongoDB connection: resolves the database (MONGO_URL, else an embedded server), opens one pooled
// client, ensures indexes once the database answers, and watches it for health and readiness.
import { setTimeout as delay } from 'node:timers/promises';
import fp from 'fastify-plugin';
import { MongoClient, type Db } from 'mongodb';
import type { Config } from '../../config/index.js';
import { ensureIndexes, ensureInstallation } from '../../db/collections.js';
import {
  forgetRunningEmbedded,
  recordRunningEmbedded,
  startEmbeddedDatabase,
  type EmbeddedDatabase,
} from '../../db/embedded.js';
import { DatabaseMonitor } from '../../db/monitor.js';

declare module 'fastify' {
  interface FastifyInstance {
    mongo: MongoClient;
    db: Db;
    database: DatabaseMonitor;
  }
}

export default fp(
  async function databasePlugin(fastify, opts: { config: Config }) {
    const { database, monitoring } = opts.config;
    let embedded: EmbeddedDatabase | undefined;
    let url = database.url;
    if (!url) {
      embedded = await startEmbeddedDatabase({
        dataDir: database.data_dir,
        cacheDir: database.cache_dir,
        prefer: database.embedded,
        log: (message) => fastify.log.info(message),
        warn: (message) => fastify.log.error(message),
      });
      url = embedded.url;
      // Lets `npm run admin` reach this database while the server runs.
      recordRunningEmbedded(database.data_dir, embedded);
    }
    fastify.log.info(
      {
        source: embedded ? 'embedded' : 'MONGO_URL',
        engine: embedded?.engine ?? 'from MONGO_URL',
        database: database.name,
      },
      embedded ? `database: embedded ${embedded.engine} in ${database.data_dir}` : 'database: MONGO_URL',
    );

    const client = new MongoClient(url, {
      appName: 'switchboard',
      // Command events feed the database metrics (plugins/app/metrics.ts) and tell the monitor that the
      // database is answering while its ping waits in the pool's queue.
      monitorCommands: true,
      maxPoolSize: database.pool_size,
      // These bound how long a request can wait on a database that is gone: it then gets 503.
      serverSelectionTimeoutMS: database.timeout_ms,
      connectTimeoutMS: database.timeout_ms,
      heartbeatFrequencyMS: Math.max(500, Math.min(10_000, database.timeout_ms)),
    });
    const db = client.db(database.name);
    let lastAnswerAt = Number.NEGATIVE_INFINITY;
    client.on('commandSucceeded', () => (lastAnswerAt = performance.now()));
    const monitor = new DatabaseMonitor(db, {
      intervalMs: monitoring.health_check_interval_s * 1000,
      timeoutMs: Math.min(database.timeout_ms, 2_000),
      embedded: embedded !== undefined,
      engine: embedded?.engine === 'mongod' ? 'mongodb' : (embedded?.engine ?? 'unknown'),
      log: fastify.log,
      connect: () => client.connect(),
      answeredSince: (since) => lastAnswerAt >= since,
      reset: async () => {
        await client.close(true).catch(() => undefined);
        await client.connect();
      },
    });
    monitor.onReady('indexes', ensureIndexes);
    monitor.onReady('installation', async (readyDb) => void (await ensureInstallation(readyDb, new Date())));

    fastify.decorate('mongo', client);
    fastify.decorate('db', db);
    fastify.decorate('database', monitor);

    fastify.addHook('onReady', async () => {
      monitor.start();
      // Start ready when the database is there, but never wait longer than a request would.
      await Promise.race([monitor.whenReady(), delay(database.timeout_ms, undefined, { ref: false })]);
    });
    fastify.addHook('onClose', async () => {
      await monitor.stop();
      await client.close();
      if (embedded) {
        forgetRunningEmbedded(database.data_dir);
        await embedded.stop();
      }
    });
  },
  { name: 'database' },
);
