// The database work of sockets coming and going (sign-in, channel list, chosen presence, resume) runs at
// most ws.connection_work_concurrency operations at a time: the rest wait their turn, so a reconnect
// storm never crowds sends out of the database (test/reliability/storm.test.ts measures that), and every
// socket still gets through. An operation that never ends gives its place up after the time limit.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ConnectionWork } from '../../src/realtime/connection-work.js';
import { person } from '../conversations/fixtures.js';
import { connect } from './client.js';
import { useListeningApp } from './fixtures.js';

const CONCURRENCY = 1;
const SOCKETS = 8;
const listening = useListeningApp({ ws: { connection_work_concurrency: CONCURRENCY } });

describe('connection work', () => {
  it('is 2 operations at a time unless WS_CONNECTION_WORK says otherwise', () => {
    const fromEnv = (env: Record<string, string>) =>
      loadConfig({ env: { DEBUG: 'true', ...env }, cwd: '/nonexistent' }).config.ws
        .connection_work_concurrency;
    expect(fromEnv({})).toBe(2);
    expect(fromEnv({ WS_CONNECTION_WORK: '6' })).toBe(6);
  });

  it('queues when many sockets connect at once, never runs more at a time, and connects them all', async () => {
    const { app, port } = listening();
    const people = await Promise.all(Array.from({ length: SOCKETS }, () => person(app)));
    const work = app.realtime.connectionWork;
    let mostRunning = 0;
    let mostWaiting = 0;
    const sampler = setInterval(() => {
      const { running, queued } = work.stats();
      mostRunning = Math.max(mostRunning, running);
      mostWaiting = Math.max(mostWaiting, queued);
    }, 0);
    try {
      const sockets = await Promise.all(people.map((who) => connect(port, who)));
      expect(sockets.map((socket) => socket.frames[0]?.type)).toEqual(Array(SOCKETS).fill('hello'));
      await Promise.all(sockets.map((socket) => socket.close()));
    } finally {
      clearInterval(sampler);
    }
    expect(work.concurrency).toBe(CONCURRENCY);
    expect(mostRunning).toBe(CONCURRENCY);
    expect(mostWaiting).toBeGreaterThan(0);

    // What ops see: nothing left under way or waiting, nothing given up.
    const health = await app.inject({ method: 'GET', url: '/api/v2/health' });
    expect(health.json().checks.realtime.connection_work).toEqual({ running: 0, queued: 0, timed_out: 0 });
  });

  it('gives up on an operation that never ends after the time limit, so the next one gets its place', async () => {
    const work = new ConnectionWork(1, 50);
    const stuck = work.run(() => new Promise<never>(() => {}));
    const next = work.run(async () => 'ran');
    expect(work.stats()).toMatchObject({ running: 1, queued: 1 });
    await expect(stuck).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE', statusCode: 503 });
    await expect(next).resolves.toBe('ran');
    expect(work.stats()).toEqual({ running: 0, queued: 0, timed_out: 1 });
  });

  it('counts the time limit from when an operation starts, not from when it was queued', async () => {
    const work = new ConnectionWork(1, 100);
    const slow = work.run(() => new Promise((resolve) => setTimeout(() => resolve('slow'), 70)));
    const queuedBehind = work.run(() => new Promise((resolve) => setTimeout(() => resolve('next'), 70)));
    // Each takes 70 ms of its 100; the second waited 70 ms first, 140 ms in all.
    await expect(Promise.all([slow, queuedBehind])).resolves.toEqual(['slow', 'next']);
    expect(work.stats().timed_out).toBe(0);
  });
});
