// The per-user allowances behind MESSAGES_PER_MINUTE and FILE_UPLOADS_PER_HOUR, with a controlled clock:
// in process, and in a real Redis (the machine's, under a key prefix of this test's own), where a Redis
// failure falls back to counting locally.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  RedisSlidingWindowLimiter,
  SlidingWindowLimiter,
  type EventLimiter,
} from '../../src/lib/sliding-window.js';

async function behavesAsASlidingWindow(limiter: EventLimiter): Promise<void> {
  const t0 = 1_000_000;
  for (const at of [t0, t0 + 100, t0 + 200]) expect((await limiter.take('u', at)).wait).toBe(0);
  // Full: the oldest leaves the window at t0 + 1000, 700 ms after t0 + 300 (rounded up to a second).
  expect((await limiter.take('u', t0 + 300)).wait).toBe(1);
  expect((await limiter.take('other', t0 + 300)).wait).toBe(0);
  // Exact at the edge: at t0 + 1000 the first event is out, one more fits, then it is full again.
  expect((await limiter.take('u', t0 + 1000)).wait).toBe(0);
  expect((await limiter.take('u', t0 + 1001)).wait).toBe(1);
  // A refund gives the event back.
  const taken = await limiter.take('u', t0 + 1100);
  expect(taken.wait).toBe(0);
  await taken.refund();
  expect((await limiter.take('u', t0 + 1150)).wait).toBe(0);
}

describe('SlidingWindowLimiter', () => {
  it('allows `limit` events in any window, exactly at its edges, and takes refunds', async () => {
    await behavesAsASlidingWindow(new SlidingWindowLimiter(3, 1000));
  });

  it('stays cheap with a large limit (expired times are skipped, not copied)', async () => {
    const limiter = new SlidingWindowLimiter(1_000_000, 60_000);
    let allowed = 0;
    // 300,000 events over five minutes: at most 60,000 in any minute, all allowed.
    for (let i = 0; i < 300_000; i++) if ((await limiter.take('busy', i)).wait === 0) allowed += 1;
    expect(allowed).toBe(300_000);
  });
});

describe('RedisSlidingWindowLimiter', () => {
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const prefix = `switchboard:test:${randomBytes(4).toString('hex')}:`;
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('behaves the same in Redis, and two limiters on one Redis share the allowance', async () => {
    const errors: unknown[] = [];
    const make = () =>
      new RedisSlidingWindowLimiter(redis, prefix, 3, 1000, new SlidingWindowLimiter(3, 1000), (error) =>
        errors.push(error),
      );
    await behavesAsASlidingWindow(make());
    const [a, b] = [make(), make()];
    const t = 5_000_000;
    expect((await a.take('shared', t)).wait).toBe(0);
    expect((await b.take('shared', t + 1)).wait).toBe(0);
    expect((await a.take('shared', t + 2)).wait).toBe(0);
    expect((await b.take('shared', t + 3)).wait).toBe(1);
    expect(errors).toEqual([]);
  });

  it('counts locally when Redis cannot be reached', async () => {
    const down = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    down.on('error', () => undefined);
    const errors: unknown[] = [];
    const limiter = new RedisSlidingWindowLimiter(
      down,
      prefix,
      2,
      1000,
      new SlidingWindowLimiter(2, 1000),
      (error) => errors.push(error),
    );
    expect((await limiter.take('u', 1)).wait).toBe(0);
    expect((await limiter.take('u', 2)).wait).toBe(0);
    expect((await limiter.take('u', 3)).wait).toBe(1);
    expect(errors.length).toBeGreaterThan(0);
    down.disconnect();
  });
});
