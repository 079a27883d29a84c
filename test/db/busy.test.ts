// A busy database is slow, not gone. With every pooled connection taken by work the database keeps
// answering, the health ping waits in the pool's queue past its timeout: health must say degraded (not
// down), and nothing in flight may be cut off. Found by the reconnect storm of the reliability suite: the
// ping timed out behind thousands of reconnects, health said down, and a client reset after 10 s failed
// every operation in flight with a 500. A database that answers nothing at all is still down, and an
// operation cut off by the client's reset is a 503, not a 500.
//
// The app reaches the suite's database through a TCP proxy of this file that can slow the database's
// answers down or hold them back.
import net from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { buildTestApp, type TestApp } from '../helper.js';

/** A TCP proxy to `target` that delays (or holds) what the database sends back, keeping its order. */
async function answerDelayingProxy(target: URL) {
  let delayMs = 0;
  let held: Promise<void> | undefined;
  let release = () => {};
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let chain = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      const due = performance.now() + delayMs;
      chain = chain.then(async () => {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        while (held) await held;
        if (!client.destroyed) client.write(chunk);
      });
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mongodb://127.0.0.1:${(server.address() as net.AddressInfo).port}/`,
    slowDown: (ms: number) => (delayMs = ms),
    hold: () => (held ??= new Promise<void>((resolve) => (release = resolve))),
    letGo: () => {
      held = undefined;
      release();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A test route that reads from the database. */
const thingRoute: FastifyPluginAsync = async (fastify) => {
  fastify.get('/thing', async () => ({
    thing: await fastify.db.collection('busy_things').findOne({}, { projection: { _id: 0 } }),
  }));
};

let proxy: Awaited<ReturnType<typeof answerDelayingProxy>>;
let testApp: TestApp;

beforeAll(async () => {
  proxy = await answerDelayingProxy(new URL(inject('mongoUrl')));
  // One pooled connection: a few slow finds are enough to keep the ping waiting past its 400 ms timeout.
  testApp = await buildTestApp(
    { database: { url: proxy.url, pool_size: 1, timeout_ms: 400 } },
    { routes: thingRoute },
  );
});

afterAll(async () => {
  proxy.letGo();
  await testApp?.close();
  await proxy?.close();
});

interface HealthAnswer {
  statusCode: number;
  status: string;
  database: { status: string; latency_ms: number | null };
}

async function health(): Promise<HealthAnswer> {
  const response = await testApp.app.inject({ method: 'GET', url: '/api/v2/health' });
  const body = response.json();
  return { statusCode: response.statusCode, status: body.status, database: body.checks.database };
}

/** Health every 100 ms until `until` settles. */
async function watchHealth(until: Promise<unknown>): Promise<HealthAnswer[]> {
  let done = false;
  void until.finally(() => (done = true));
  const seen: HealthAnswer[] = [];
  while (!done) {
    seen.push(await health());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return seen;
}

describe('a busy database', () => {
  it('is degraded, not down, while it keeps answering; and nothing in flight is cut off', async () => {
    const things = testApp.app.db.collection<{ _id: string; n: number }>('busy_things');
    await things.insertOne({ _id: 'one', n: 1 });
    await expect(health()).resolves.toMatchObject({ statusCode: 200, status: 'ok' });

    // 6 workers share the one connection, each answer takes 150 ms: a ping queues for about 900 ms.
    proxy.slowDown(150);
    const deadline = performance.now() + 4_000;
    const outcomes: string[] = [];
    const workers = Promise.all(
      Array.from({ length: 6 }, async () => {
        while (performance.now() < deadline) {
          outcomes.push(
            await things.findOne({ _id: 'one' }).then(
              (found) => (found?.n === 1 ? 'found' : 'missing'),
              (error: Error) => error.name,
            ),
          );
        }
      }),
    );
    const seen = await watchHealth(workers);
    proxy.slowDown(0);

    expect(seen.length).toBeGreaterThan(20);
    expect(seen.filter((answer) => answer.statusCode !== 200)).toEqual([]);
    expect(seen.some((answer) => answer.status === 'degraded' && answer.database.latency_ms! >= 400)).toBe(
      true,
    );
    expect(outcomes.length).toBeGreaterThan(20);
    expect(new Set(outcomes)).toEqual(new Set(['found']));
  }, 30_000);

  it('is down when it answers nothing at all, and back when it answers again', async () => {
    proxy.hold();
    // In flight when the monitor, after 10 s of silence, closes the client and connects it afresh.
    const read = testApp.app.inject({ method: 'GET', url: '/api/v2/_test/thing' });
    let answer = await health();
    for (let waited = 0; answer.statusCode === 200 && waited < 10_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await health();
    }
    expect(answer).toMatchObject({ statusCode: 503, status: 'down', database: { status: 'down' } });
    const cutOff = await read;
    expect(cutOff.statusCode).toBe(503);
    expect(cutOff.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });

    proxy.letGo();
    for (let waited = 0; answer.status !== 'ok' && waited < 10_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      answer = await health();
    }
    expect(answer).toMatchObject({ statusCode: 200, status: 'ok', database: { status: 'up' } });
    await expect(testApp.app.inject({ method: 'GET', url: '/api/v2/_test/thing' })).resolves.toMatchObject({
      statusCode: 200,
    });
  }, 40_000);

  it('is not down because the server itself stalled past the ping timeout while the answer came in', async () => {
    const monitor = testApp.app.database;
    proxy.slowDown(100);
    try {
      const check = monitor.check();
      await new Promise((resolve) => setTimeout(resolve, 50)); // the ping is out, its answer on the way
      // A synchronous stall of the whole process (a long computation, a big collection) past the 400 ms
      // timeout: when it ends, the timeout and the database's answer are both due.
      const stallUntil = performance.now() + 700;
      while (performance.now() < stallUntil);
      await check;
      expect(monitor.state.status).toBe('up');
    } finally {
      proxy.slowDown(0);
    }
  });

  it('answers 503 for an operation cut off by a client reset', async () => {
    // What the monitor's reset does to work in flight (db/monitor.ts resetIfStuck), with a client of our own.
    const client = await new MongoClient(proxy.url, { serverSelectionTimeoutMS: 2_000 }).connect();
    const things = client.db(testApp.databaseName).collection('busy_things');
    await things.findOne({}); // the read below then goes out on an open connection
    proxy.hold();
    try {
      const read = things.findOne({}).catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Closing interrupts the read at once; the close itself finishes once the database answers again.
      const closed = client.close(true);
      const error = await read;
      proxy.letGo();
      await closed;
      expect(error).toMatchObject({ name: 'MongoClientClosedError' });
      expect(isDatabaseUnavailable(error)).toBe(true);
    } finally {
      proxy.letGo();
    }
  });
});
