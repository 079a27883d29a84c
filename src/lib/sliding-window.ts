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

/** A key's event times, oldest first; `head` skips the expired ones (compacted now and then). */
interface TimeLog {
  times: number[];
  head: number;
}

export class SlidingWindowLimiter implements EventLimiter {
  private readonly logs = new Map<string, TimeLog>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Amortised O(1) per take, however large the limit: expired times are skipped, not filtered out. */
  async take(key: string, now: number): Promise<Allowance> {
    let log = this.logs.get(key);
    if (!log) this.logs.set(key, (log = { times: [], head: 0 }));
    const { times } = log;
    while (log.head < times.length && now - times[log.head]! >= this.windowMs) log.head += 1;
    if (log.head > 1024 && log.head * 2 > times.length) {
      times.splice(0, log.head);
      log.head = 0;
    }
    if (times.length - log.head >= this.limit) {
      const oldest = times[log.head]!;
      return { wait: Math.max(1, Math.ceil((oldest + this.windowMs - now) / 1000)), refund: NOTHING };
    }
    times.push(now);
    if (this.logs.size > 100_000) this.prune(now);
    return { wait: 0, refund: async () => this.refund(key, now) };
  }

  private refund(key: string, time: number): void {
    const log = this.logs.get(key);
    const index = log ? log.times.lastIndexOf(time) : -1;
    if (log && index >= log.head) log.times.splice(index, 1);
  }

  private prune(now: number): void {
    for (const [key, log] of this.logs) {
      const newest = log.times.at(-1);
      if (newest === undefined || now - newest >= this.windowMs) this.logs.delete(key);
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
