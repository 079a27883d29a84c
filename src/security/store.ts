// Where the detection engine keeps what must outlive one request: each principal's decaying score, how
// many times it was banned lately (bans escalate), and the bans themselves. In memory (bounded, LRU) for
// one instance; in Redis with REDIS_URL, so every instance adds to the same scores and honours the same
// bans. Each instance also keeps the bans in memory (see BanList): the check on every request never
// waits for Redis.
import type { Redis } from 'ioredis';
import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../lib/bounded-cache.js';

export interface Ban {
  /** `user:<id>` or `ip:<address>`. */
  key: string;
  /** Epoch ms when it ends. */
  until: number;
  /** 1 for a first ban, 2 for the next within the offense memory, … (each doubles the length). */
  level: number;
  /** The rules that fired in the window that led to it. */
  rules: string[];
  score: number;
  created_at: number;
}

export interface SecurityStore {
  /** Adds points to a principal's score (decayed to `now` first); returns the new score. */
  addScore(principal: string, points: number, now: number): Promise<number>;
  resetScore(principal: string): Promise<void>;
  /** Counts one more ban of the principal; returns how many within the offense memory. */
  countOffense(principal: string, now: number): Promise<number>;
  clearOffenses(principal: string): Promise<void>;
  saveBan(ban: Ban): Promise<void>;
  removeBan(key: string): Promise<void>;
  /** Every ban still in force (for an instance that starts, or comes back after a Redis outage). */
  loadBans(now: number): Promise<Ban[]>;
  close(): Promise<void>;
}

export function decayed(score: number, elapsedMs: number, halfLifeMs: number): number {
  return elapsedMs <= 0 ? score : score * 0.5 ** (elapsedMs / halfLifeMs);
}

export class MemorySecurityStore implements SecurityStore {
  private readonly scores: LRUCache<string, { score: number; at: number }>;
  /** Bans counted per principal, and until when they are remembered (epoch ms, the engine's clock). */
  private readonly offenses: LRUCache<string, { count: number; until: number }>;

  constructor(
    private readonly halfLifeMs: number,
    private readonly offenseMemoryMs: number,
    maxPrincipals: number,
  ) {
    this.scores = boundedCache(maxPrincipals);
    this.offenses = boundedCache(maxPrincipals);
  }

  async addScore(principal: string, points: number, now: number): Promise<number> {
    const entry = this.scores.get(principal);
    const score = (entry ? decayed(entry.score, now - entry.at, this.halfLifeMs) : 0) + points;
    this.scores.set(principal, { score, at: now });
    return score;
  }

  async resetScore(principal: string): Promise<void> {
    this.scores.delete(principal);
  }

  async countOffense(principal: string, now: number): Promise<number> {
    const past = this.offenses.get(principal);
    const count = (past && past.until > now ? past.count : 0) + 1;
    this.offenses.set(principal, { count, until: now + this.offenseMemoryMs }); // restarts with each ban
    return count;
  }

  async clearOffenses(principal: string): Promise<void> {
    this.offenses.delete(principal);
  }

  // The engine's BanList is the only copy on a single instance.
  async saveBan(): Promise<void> {}
  async removeBan(): Promise<void> {}
  async loadBans(): Promise<Ban[]> {
    return [];
  }
  async close(): Promise<void> {}
}

/** Decays and adds in one step on the server, so two instances adding at once never lose points. */
const ADD_SCORE = `
local entry = redis.call('HMGET', KEYS[1], 's', 't')
local now = tonumber(ARGV[2])
local score = tonumber(entry[1]) or 0
local at = tonumber(entry[2]) or now
if now > at then score = score * math.pow(0.5, (now - at) / tonumber(ARGV[3])) end
score = score + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 's', tostring(score), 't', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return tostring(score)
`;

const PREFIX = 'switchboard:security:';

/**
 * Scores, offenses and bans in Redis. When Redis fails, each call falls back to the in-memory store, so
 * detection keeps working on this instance alone until Redis is back.
 */
export class RedisSecurityStore implements SecurityStore {
  constructor(
    private readonly redis: Redis,
    private readonly fallback: MemorySecurityStore,
    private readonly halfLifeMs: number,
    private readonly offenseMemoryMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  private async orFallback<T>(shared: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    try {
      return await shared();
    } catch (error) {
      this.onError(error);
      return local();
    }
  }

  addScore(principal: string, points: number, now: number): Promise<number> {
    // A score has decayed to nothing after ten half-lives: the key need not live longer.
    const ttl = String(this.halfLifeMs * 10);
    return this.orFallback(
      async () =>
        Number(
          await this.redis.eval(
            ADD_SCORE,
            1,
            `${PREFIX}score:${principal}`,
            points,
            now,
            this.halfLifeMs,
            ttl,
          ),
        ),
      () => this.fallback.addScore(principal, points, now),
    );
  }

  resetScore(principal: string): Promise<void> {
    return this.orFallback(
      async () => void (await this.redis.del(`${PREFIX}score:${principal}`)),
      () => this.fallback.resetScore(principal),
    );
  }

  countOffense(principal: string, now: number): Promise<number> {
    const key = `${PREFIX}offenses:${principal}`;
    return this.orFallback(
      async () => {
        const [[, count]] = (await this.redis
          .multi()
          .incr(key)
          .pexpire(key, this.offenseMemoryMs)
          .exec()) as [[unknown, number]];
        return count;
      },
      () => this.fallback.countOffense(principal, now),
    );
  }

  clearOffenses(principal: string): Promise<void> {
    return this.orFallback(
      async () => void (await this.redis.del(`${PREFIX}offenses:${principal}`)),
      () => this.fallback.clearOffenses(principal),
    );
  }

  async saveBan(ban: Ban): Promise<void> {
    const ttl = Math.max(1, ban.until - Date.now());
    await this.orFallback(
      async () => void (await this.redis.set(`${PREFIX}ban:${ban.key}`, JSON.stringify(ban), 'PX', ttl)),
      async () => undefined,
    );
  }

  async removeBan(key: string): Promise<void> {
    await this.orFallback(
      async () => void (await this.redis.del(`${PREFIX}ban:${key}`)),
      async () => undefined,
    );
  }

  async loadBans(now: number): Promise<Ban[]> {
    return this.orFallback(
      async () => {
        const bans: Ban[] = [];
        let cursor = '0';
        do {
          const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${PREFIX}ban:*`, 'COUNT', 500);
          cursor = next;
          const values = keys.length > 0 ? await this.redis.mget(keys) : [];
          for (const value of values) {
            if (!value) continue;
            const ban = JSON.parse(value) as Ban;
            if (ban.until > now) bans.push(ban);
          }
        } while (cursor !== '0');
        return bans;
      },
      async () => [],
    );
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
