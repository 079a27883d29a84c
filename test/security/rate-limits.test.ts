// Rate limits over REST and WebSocket, their headers, and what they tell the detection engine; then two
// instances on one (private, real) Redis sharing rate-limit counts, scores and bans.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.js';
import type { SecurityEventRecord } from '../../src/security/engine.js';
import { call, conversationOverrides, ok, person } from '../conversations/fixtures.js';
import { buildTestApp, type TestApp } from '../helper.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, bearer, loginOk } from '../identity/fixtures.js';
import { connect } from '../realtime/client.js';
import { useListeningApp } from '../realtime/fixtures.js';
import { PrivateRedis } from '../realtime/processes.js';

const DETECTION = { alert_score: 25, block_score: 35 };

async function eventsOf(app: TestApp['app'], principal: string): Promise<SecurityEventRecord[]> {
  await app.detection!.settled();
  return app.db.collection<SecurityEventRecord>('security_events').find({ principal }).toArray();
}

describe('limits on one instance', () => {
  const listening = useListeningApp({
    rate_limit: { requests_per_minute: 6, login_per_minute: 3, messages_per_minute: 2 },
    security: DETECTION,
  });

  it('a global per-user limit with x-ratelimit headers; health is never limited; 429s feed detection', async () => {
    const { app } = listening();
    const busy = await person(app);
    const calm = await person(app);
    const remaining = [];
    for (let i = 0; i < 6; i++) {
      const response = await call(app, busy, 'GET', '/channels');
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-ratelimit-limit']).toBe('6');
      remaining.push(response.headers['x-ratelimit-remaining']);
    }
    expect(remaining).toEqual(['5', '4', '3', '2', '1', '0']);
    const limited = await call(app, busy, 'GET', '/channels');
    expect(limited.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Per principal: another user behind the same address has a bucket of their own.
    await ok(call(app, calm, 'GET', '/channels'));
    for (let i = 0; i < 10; i++)
      expect((await app.inject({ url: '/api/v2/health/live' })).statusCode).toBe(200);

    for (let i = 0; i < 4; i++) await call(app, busy, 'GET', '/channels');
    const events = await eventsOf(app, `user:${busy.id}`);
    expect(events.at(-1)).toMatchObject({ action: 'observe', rules: [{ id: 'flood.rate_limited' }] });
  });

  it('logins per address: the fourth in a minute gets 429, another address is not affected', async () => {
    const { app } = listening();
    const login = (address: string) =>
      app.inject({
        method: 'POST',
        url: '/api/v2/auth/login',
        remoteAddress: address,
        payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
      });
    for (let i = 0; i < 3; i++) expect((await login('203.0.113.10')).statusCode).toBe(200);
    const limited = await login('203.0.113.10');
    expect(limited.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    expect(limited.headers['x-ratelimit-limit']).toBe('3');
    expect((await login('203.0.113.11')).statusCode).toBe(200);
  });

  it('MESSAGES_PER_MINUTE counts REST and WebSocket sends together, and socket refusals feed detection', async () => {
    const { app, port } = listening();
    const chatty = await person(app);
    const socket = await connect(port, chatty);
    await ok(call(app, chatty, 'POST', '/messages', { channel_id: 'general', content: 'one' }), 201);
    const second = await socket.request({ type: 'chat_message', channel_id: 'general', content: 'two' });
    expect(second.type).toBe('ack');
    const refusedRest = await call(app, chatty, 'POST', '/messages', {
      channel_id: 'general',
      content: 'three',
    });
    expect(refusedRest.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    for (let i = 0; i < 4; i++) {
      const refused = await socket.request({
        type: 'chat_message',
        channel_id: 'general',
        content: `more ${i}`,
      });
      expect(refused).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
    }
    const events = await eventsOf(app, `user:${chatty.id}`);
    expect(
      events.some(
        (event) => event.connection_id && event.rules.some((rule) => rule.id === 'flood.rate_limited'),
      ),
    ).toBe(true);
    await socket.close();
  });
});

describe('two instances on one Redis', () => {
  let redis: PrivateRedis;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    const overrides = conversationOverrides({
      redis: { url: redis.url },
      rate_limit: { login_per_minute: 4, messages_per_minute: 3 },
      security: DETECTION,
    });
    a = await buildTestApp(overrides);
    b = await buildTestApp(overrides, { databaseName: a.databaseName });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  const eventually = async (check: () => Promise<boolean>) => {
    const deadline = Date.now() + 5000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('not within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it('share the login limit: two logins on each, the fifth on either is refused', async () => {
    const login = (app: TestApp) =>
      app.app.inject({
        method: 'POST',
        url: '/api/v2/auth/login',
        remoteAddress: '203.0.113.20',
        payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
      });
    for (const app of [a, b, a, b]) expect((await login(app)).statusCode).toBe(200);
    expect((await login(a)).statusCode).toBe(429);
    expect((await login(b)).statusCode).toBe(429);
  });

  it('share MESSAGES_PER_MINUTE: sends on both instances count against one allowance', async () => {
    const sender = await person(a.app); // the same database: the token works on both
    const send = (app: TestApp, content: string) =>
      call(app.app, sender, 'POST', '/messages', { channel_id: 'general', content });
    for (const [app, content] of [
      [a, 'one'],
      [b, 'two'],
      [a, 'three'],
    ] as const)
      await ok(send(app, content), 201);
    expect((await send(b, 'four')).json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    expect((await send(a, 'five')).json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
  });

  it('add to one score, ban on both, and lift on both', async () => {
    const address = '203.0.113.21';
    const attack = (app: TestApp) =>
      app.app.inject({ method: 'GET', url: "/api/v2/users?department=' OR '1'='1", remoteAddress: address });
    // Two hits on each instance: 40 points in one shared score, over the block score of 35.
    const statuses = [];
    for (const app of [a, b, a, b]) statuses.push((await attack(app)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 403]);
    // B placed the ban; A hears of it through Redis.
    await eventually(async () => (await attack(a)).statusCode === 403);

    const admin = await loginOk(a.app, ADMIN_EMAIL, ADMIN_PASSWORD);
    const blocks = await a.app.inject({
      url: '/api/v2/admin/security/blocks',
      headers: bearer(admin.access_token),
    });
    expect(blocks.json().blocks.map((ban: { key: string }) => ban.key)).toContain(`ip:${address}`);
    const lifted = await a.app.inject({
      method: 'DELETE',
      url: `/api/v2/admin/security/blocks/${encodeURIComponent(`ip:${address}`)}`,
      headers: bearer(admin.access_token),
    });
    expect(lifted.statusCode).toBe(204);
    const health = (app: TestApp) => app.app.inject({ url: '/api/v2/health/live', remoteAddress: address });
    await eventually(async () => (await health(b)).statusCode === 200);
    expect((await health(a)).statusCode).toBe(200);
  });
});
