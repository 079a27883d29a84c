// The database work of sockets coming and going (sign-in, channel list, chosen presence, resume) runs at
// most ws.connection_work_concurrency operations at a time: the rest wait their turn, so a reconnect
// storm never crowds sends out of the database (test/reliability/storm.test.ts measures that), and every
// socket still gets through.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
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
      mostRunning = Math.max(mostRunning, work.activeCount);
      mostWaiting = Math.max(mostWaiting, work.pendingCount);
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
  });
});
