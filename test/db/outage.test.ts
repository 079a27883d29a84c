// A database outage as a client and an orchestrator see it: health turns down, readiness and routes that
// need the database answer 503 DATABASE_UNAVAILABLE quickly instead of hanging, the process stays up, and
// everything recovers by itself when the database returns. Uses a private FerretDB (never the shared one).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyPluginAsync, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import {
  ensureFerretDbBinary,
  freePort,
  launchFerretDb,
  type FerretDbServer,
} from '../../src/db/embedded.js';
import { buildTestApp } from '../helper.js';

/** Each test waits for a database to stop and start again, with bounded waits of up to 20 s per step. */
const OUTAGE_TEST_TIMEOUT_MS = 120_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

let binary: string;
beforeAll(async () => {
  const { config } = loadConfig({ env: {}, cwd: os.tmpdir() });
  binary = await ensureFerretDbBinary(config.database.cache_dir, () => {});
});

/** A FerretDB of this test's own, which the test can stop and start again on the same port and data. */
async function privateDatabase() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-outage-db-'));
  const port = await freePort();
  let server: FerretDbServer | undefined;
  const db = {
    url: `mongodb://127.0.0.1:${port}/`,
    start: async () => {
      server = await launchFerretDb({ binary, dataDir, port });
    },
    stop: async () => {
      await server?.stop();
      server = undefined;
    },
  };
  cleanups.push(async () => {
    await db.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return db;
}

/** Test routes that need the database: store a thing, read it back. */
const thingRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.post<{ Body: { name: string } }>('/things', async (request, reply) => {
    await fastify.db.collection('things').insertOne({ name: request.body.name });
    return reply.code(201).send({ name: request.body.name });
  });
  fastify.get<{ Params: { name: string } }>('/things/:name', async (request) => {
    const thing = await fastify.db
      .collection<{ name: string }>('things')
      .findOne({ name: request.params.name }, { projection: { _id: 0 } });
    return { thing };
  });
};

/** The real application against `url` (which may not be answering yet), plus the test routes. */
async function buildApp(url: string): Promise<FastifyInstance> {
  const server = await buildTestApp({ database: { url } }, { routes: thingRoutes });
  cleanups.push(server.close);
  return server.app;
}

/** Polls until `check` passes, for at most `timeoutMs`; then fails with the last assertion error. */
async function eventually(check: () => Promise<void>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Fails if the answer takes longer than `limitMs`: a request must not hang on a missing database. */
async function answeredWithin<T>(limitMs: number, request: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${limitMs} ms`)), limitMs);
  });
  try {
    return await Promise.race([request, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function expectUnavailable(response: LightMyRequestResponse) {
  expect(response.statusCode).toBe(503);
  const body = response.json();
  expect(body).toMatchObject({
    statusCode: 503,
    code: 'DATABASE_UNAVAILABLE',
    error: 'Service Unavailable',
    request_id: response.headers['x-request-id'],
  });
  expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  expect(body.message).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Mongo/i);
}

describe('database outage', { timeout: OUTAGE_TEST_TIMEOUT_MS }, () => {
  it('turns health down and answers 503 while the database is gone, then recovers by itself', async () => {
    const database = await privateDatabase();
    await database.start();
    const server = await buildApp(database.url);
    const get = (url: string) => server.inject({ method: 'GET', url });

    await eventually(async () => {
      const health = await get('/api/v2/health');
      expect(health.statusCode).toBe(200);
      expect(health.json().checks.database.status).toBe('up');
    });
    const created = await server.inject({
      method: 'POST',
      url: '/api/v2/_test/things',
      payload: { name: 'before-outage' },
    });
    expect(created.statusCode).toBe(201);
    expect((await get('/api/v2/_test/things/before-outage')).json()).toEqual({
      thing: { name: 'before-outage' },
    });

    await database.stop();

    await eventually(async () => {
      const health = await get('/api/v2/health');
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'down', checks: { database: { status: 'down' } } });
    });
    expectUnavailable(await get('/api/v2/health/ready'));
    expectUnavailable(await answeredWithin(10_000, get('/api/v2/_test/things/before-outage')));
    expectUnavailable(
      await answeredWithin(
        10_000,
        server.inject({ method: 'POST', url: '/api/v2/_test/things', payload: { name: 'during-outage' } }),
      ),
    );
    // The process keeps serving what does not need the database.
    expect((await get('/api/v2/health/live')).statusCode).toBe(200);

    await database.start();

    await eventually(async () => {
      const health = await get('/api/v2/health');
      expect(health.statusCode).toBe(200);
      expect(health.json().status).not.toBe('down');
      expect((await get('/api/v2/health/ready')).json()).toEqual({ status: 'ready' });
    });
    await eventually(async () => {
      const found = await get('/api/v2/_test/things/before-outage');
      expect(found.statusCode).toBe(200);
      expect(found.json()).toEqual({ thing: { name: 'before-outage' } });
    });
    const after = await server.inject({
      method: 'POST',
      url: '/api/v2/_test/things',
      payload: { name: 'after-outage' },
    });
    expect(after.statusCode).toBe(201);
    expect((await get('/api/v2/_test/things/after-outage')).json()).toEqual({
      thing: { name: 'after-outage' },
    });
  });

  it('starts without a database and becomes ready when it appears', async () => {
    const database = await privateDatabase();
    const server = await buildApp(database.url);
    const get = (url: string) => server.inject({ method: 'GET', url });

    expect((await get('/api/v2/health/live')).statusCode).toBe(200);
    expectUnavailable(await get('/api/v2/health/ready'));
    await eventually(async () => {
      const health = await get('/api/v2/health');
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({ status: 'down', checks: { database: { status: 'down' } } });
    });
    expectUnavailable(await answeredWithin(10_000, get('/api/v2/_test/things/anything')));

    await database.start();

    await eventually(async () => {
      expect((await get('/api/v2/health/ready')).json()).toEqual({ status: 'ready' });
      const health = await get('/api/v2/health');
      expect(health.statusCode).toBe(200);
      // The start-up work that waited for the database has run: it now knows what it talks to.
      expect(health.json().checks.database).toMatchObject({ status: 'up', engine: 'ferretdb' });
    });
    await eventually(async () => {
      const created = await server.inject({
        method: 'POST',
        url: '/api/v2/_test/things',
        payload: { name: 'late' },
      });
      expect(created.statusCode).toBe(201);
    });
    expect((await get('/api/v2/_test/things/late')).json()).toEqual({ thing: { name: 'late' } });
  });
});
