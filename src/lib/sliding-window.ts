// Per-key allowances of `limit` events in any `windowMs` (a sliding log: the times of the last `limit`
// events per key). Exact at window edges, unlike a fixed window that lets twice the limit through across
// a boundary. In this process, or shared by every instance through Redis (REDIS_URL): then one user's
// sends count against one allowance whichever instance takes them. If Redis fails, the instance falls
// back to counting on its own rather than refusing or letting everything through.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** One event taken: `wait` 0 when allowed (and counted), else the seconds until one is free. */
export interface Allowance {
  wait: number;
  /** Gives the event back (what it was taken for failed); nothing when it was refused. */
  refund(): Promise<void>;
}

export interface EventLimiter {
  take(key: string, now: number): Promise<Allowance>;
}

const NOTHING = async () => undefined;

export class SlidingWindowLimiter implements EventLimiter {
  private readonly log = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  async take(key: string, now: number): Promise<Allowance> {
    const times = (this.log.get(key) ?? []).filter((time) => now - time < this.windowMs);
    if (times.length >= this.limit) {
      this.log.set(key, times);
      return { wait: Math.max(1, Math.ceil((times[0]! + this.windowMs - now) / 1000)), refund: NOTHING };
    }
    times.push(now);
    this.log.set(key, times);
    if (this.log.size > 100_000) this.prune(now);
    return { wait: 0, refund: async () => this.refund(key, now) };
  }

  private refund(key: string, time: number): void {
    const times = this.log.get(key);
    const index = times?.lastIndexOf(time) ?? -1;
    if (times && index >= 0) times.splice(index, 1);
  }

  private prune(now: number): void {
    for (const [key, times] of this.log) {
      if (!times.some((time) => now - time < this.windowMs)) this.log.delete(key);
    }
  }
}

/** Drops what left the window, then counts and adds in one step on the server (no race between instances). */
const TAKE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
`;

export class RedisSlidingWindowLimiter implements EventLimiter {
  constructor(
    private readonly redis: Redis,
    /** Key prefix, e.g. `switchboard:limit:messages:`. */
    private readonly prefix: string,
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly fallback: EventLimiter,
    private readonly onError: (error: unknown) => void,
  ) {}

  async take(key: string, now: number): Promise<Allowance> {
    const member = `${now}:${randomBytes(4).toString('hex')}`;
    const redisKey = this.prefix + key;
    let waitMs: number;
    try {
      waitMs = Number(await this.redis.eval(TAKE, 1, redisKey, now, this.windowMs, this.limit, member));
    } catch (error) {
      this.onError(error);
      return this.fallback.take(key, now);
    }
    if (waitMs > 0) return { wait: Math.max(1, Math.ceil(waitMs / 1000)), refund: NOTHING };
    return {
      wait: 0,
      refund: async () => {
        await this.redis.zrem(redisKey, member).catch(() => undefined);
      },
    };
  }
}
