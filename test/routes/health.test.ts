import type { FastifyPluginAsync } from 'fastify';
import { describe, expect, it } from 'vitest';
import { MinuteRate } from '../../src/lib/minute-rate.js';
import { call, conversationOverrides, createChannel, person } from '../conversations/fixtures.js';
import { useTestApp } from '../helper.js';

const failingRoutes: FastifyPluginAsync = async (instance) => {
  instance.get('/fail', { config: { public: true } }, async () => {
    throw new Error('a bug, on purpose');
  });
};

describe('GET /api/v2/health', () => {
  const app = useTestApp();

  it('reports ok with the database engine, its latency and process figures', async () => {
    const response = await app().app.inject({ method: 'GET', url: '/api/v2/health' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.status).toBe('ok');
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.checks.database).toMatchObject({ status: 'up', embedded: false });
    expect(['ferretdb', 'mongodb']).toContain(body.checks.database.engine);
    expect(body.checks.database.latency_ms).toBeGreaterThanOrEqual(0);
    expect(body.system.rss_bytes).toBeGreaterThan(0);
    expect(body.system.heap_used_bytes).toBeGreaterThan(0);
    expect(typeof body.system.event_loop_delay_p99_ms).toBe('number');
  });

  it('answers liveness and readiness', async () => {
    const live = await app().app.inject({ method: 'GET', url: '/api/v2/health/live' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await app().app.inject({ method: 'GET', url: '/api/v2/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
  });
});

describe('GET /api/v2/health: traffic figures', () => {
  const app = useTestApp(conversationOverrides(), { routes: failingRoutes });
  const health = async () => (await app().app.inject({ method: 'GET', url: '/api/v2/health' })).json();

  it('counts messages and server errors of the last minute, and connections', async () => {
    const before = await health();
    expect(before.websocket).toEqual({ connections: 0, users: 0 });
    const sender = await person(app().app);
    const channel = await createChannel(app().app, sender, { name: `health-${Date.now()}`, kind: 'group' });
    for (let index = 0; index < 3; index += 1) {
      expect(
        (await call(app().app, sender, 'POST', '/messages', { channel_id: channel.id, content: `m${index}` }))
          .statusCode,
      ).toBe(201);
    }
    expect((await app().app.inject({ method: 'GET', url: '/api/v2/_test/fail' })).statusCode).toBe(500);
    // A client error is not a server error.
    expect((await app().app.inject({ method: 'GET', url: '/api/v2/channels/nope' })).statusCode).toBe(401);
    const after = await health();
    expect(after.throughput.messages_per_min).toBe(before.throughput.messages_per_min + 3);
    expect(after.errors.rate_per_min).toBe(before.errors.rate_per_min + 1);
  });
});

describe('MinuteRate', () => {
  it('counts what happened in the last 60 seconds only', () => {
    let now = 1_000_000;
    const rate = new MinuteRate(() => now);
    rate.add();
    rate.add(2);
    now += 30_000;
    rate.add();
    expect(rate.perMinute()).toBe(4);
    now += 31_000; // the first three are now more than a minute old
    expect(rate.perMinute()).toBe(1);
    now += 120_000;
    expect(rate.perMinute()).toBe(0);
    rate.add();
    expect(rate.perMinute()).toBe(1);
  });
});

describe('GET /api/v2/health with MONITORING_ENABLED=false', () => {
  const app = useTestApp({ monitoring: { enabled: false } });

  it('is reduced to liveness: status, version and uptime only', async () => {
    const response = await app().app.inject({ method: 'GET', url: '/api/v2/health' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual(['status', 'uptime_s', 'version']);
    expect(body.status).toBe('ok');
  });
});
