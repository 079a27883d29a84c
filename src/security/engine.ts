// The scoring engine: rules that fired for a principal add their scores to its decaying total, and the
// total against three thresholds decides what happens: observe (a security event is recorded), alert
// (connected admins are told too) or block (the principal is banned for a while; bans double on repeat).
// It knows nothing of HTTP or sockets: the detection plugin turns requests and frames into fired rules.
import { boundedCache } from '../lib/bounded-cache.js';
import { newId } from '../lib/ids.js';
import type { Config } from '../config/index.js';
import { RULES, type FiredRule, type RuleCategory, type RuleId } from './rules.js';
import type { Ban, SecurityStore } from './store.js';

export type Action = 'observe' | 'alert' | 'block';

/** Who is judged: a signed-in user (`user:<id>`), else the client address (`ip:<address>`). */
export interface Subject {
  principal: string;
  user_id: string | null;
  ip: string | null;
}

/** What was being done: a request, or a frame of a socket. */
export interface EventRef {
  request_id?: string;
  method?: string;
  path?: string;
  connection_id?: string;
  frame?: number;
  frame_type?: string;
}

export interface SecurityEventRecord extends Subject, EventRef {
  _id: string;
  at: Date;
  rules: { id: RuleId; category: RuleCategory; score: number; where?: string }[];
  /** The principal's score after these rules. */
  score: number;
  action: Action;
  /** Set when this event banned the principal. */
  ban_until?: Date;
}

export interface Decision {
  action: Action | 'none';
  score: number;
  ban?: Ban;
}

export interface EngineDeps {
  config: Config['security'];
  store: SecurityStore;
  /** Writes an event (security.log and the security_events collection). */
  record(event: SecurityEventRecord): void;
  /** Tells connected admins (alert and block). */
  alert(event: SecurityEventRecord): void;
  /** A ban was placed here (close the user's sockets, audit it, tell the other instances). */
  banned(ban: Ban, event: SecurityEventRecord): void;
  /** Counted by rule and action for the metrics. */
  count?(rule: string, action: string): void;
  now?: () => number;
}

export const userPrincipal = (userId: string): string => `user:${userId}`;
export const ipPrincipal = (ip: string | null | undefined): string => `ip:${ip ?? 'unknown'}`;

/** The bans in force, in memory on every instance (the per-request check never waits for anything). */
export class BanList {
  private readonly bans = boundedCache<string, Ban>(100_000);

  active(key: string, now: number): Ban | undefined {
    const ban = this.bans.get(key);
    if (ban && ban.until <= now) {
      this.bans.delete(key);
      return undefined;
    }
    return ban;
  }

  has(): boolean {
    return this.bans.size > 0;
  }

  add(ban: Ban): void {
    this.bans.set(ban.key, ban);
  }

  remove(key: string): boolean {
    return this.bans.delete(key);
  }

  list(now: number): Ban[] {
    return [...this.bans.values()]
      .filter((ban) => ban.until > now)
      .sort((a, b) => b.created_at - a.created_at);
  }
}

export class DetectionEngine {
  readonly bans = new BanList();
  /** Principals admins were alerted about lately: one alert per principal per 10 minutes (bans always). */
  private readonly alerted = boundedCache<string, true>(10_000, { ttl: 10 * 60_000 });
  private readonly now: () => number;

  constructor(private readonly deps: EngineDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The ban in force for `user:<id>` or `ip:<address>`, if any. */
  banOf(key: string): Ban | undefined {
    return this.bans.has() ? this.bans.active(key, this.now()) : undefined;
  }

  /** Seconds until a ban ends (at least 1). */
  retryAfter(ban: Ban): number {
    return Math.max(1, Math.ceil((ban.until - this.now()) / 1000));
  }

  /**
   * Scores the rules that fired for a subject and acts on the total. Content rules never add to the
   * score: they are recorded (observe) only when one item trips `content_observe_score` of them.
   */
  async assess(subject: Subject, fired: readonly FiredRule[], ref: EventRef): Promise<Decision> {
    const { config } = this.deps;
    let points = 0;
    let content = 0;
    let observeOnly = false;
    for (const rule of fired) {
      const { category, score } = RULES[rule.id];
      if (category === 'content') content += score;
      else if (score === 0) observeOnly = true;
      else points += score;
    }
    const now = this.now();
    const score = points > 0 ? await this.deps.store.addScore(subject.principal, points, now) : 0;
    let action: Decision['action'] = 'none';
    if (points > 0 && score >= config.block_score) action = 'block';
    else if (points > 0 && score >= config.alert_score) action = 'alert';
    else if (
      (points > 0 && score >= config.observe_score) ||
      observeOnly ||
      content >= config.content_observe_score
    )
      action = 'observe';
    if (action === 'none') return { action, score };

    const event: SecurityEventRecord = {
      _id: newId(),
      at: new Date(now),
      ...subject,
      ...ref,
      rules: fired.map((rule) => ({
        id: rule.id,
        category: RULES[rule.id].category,
        score: RULES[rule.id].score,
        ...(rule.where ? { where: rule.where } : {}),
      })),
      score: Math.round(score * 10) / 10,
      action,
    };
    let ban: Ban | undefined;
    if (action === 'block') {
      ban = await this.ban(subject.principal, fired, score, now);
      event.ban_until = new Date(ban.until);
    }
    for (const rule of fired) this.deps.count?.(rule.id, action);
    this.deps.record(event);
    if (action === 'block' || (action === 'alert' && !this.alerted.has(subject.principal))) {
      this.alerted.set(subject.principal, true);
      this.deps.alert(event);
    }
    if (ban) this.deps.banned(ban, event);
    return { action, score, ...(ban ? { ban } : {}) };
  }

  /** Bans for base × 2^(offenses − 1), up to the maximum; the score starts again from zero. */
  private async ban(
    principal: string,
    fired: readonly FiredRule[],
    score: number,
    now: number,
  ): Promise<Ban> {
    const { config, store } = this.deps;
    const level = await store.countOffense(principal, now);
    const seconds = Math.min(config.ban_max_s, config.ban_base_s * 2 ** Math.min(level - 1, 30));
    const ban: Ban = {
      key: principal,
      until: now + seconds * 1000,
      level,
      rules: [...new Set(fired.map((rule) => rule.id))],
      score: Math.round(score * 10) / 10,
      created_at: now,
    };
    this.bans.add(ban);
    await store.resetScore(principal);
    await store.saveBan(ban);
    return ban;
  }

  /** A ban placed by another instance. */
  adopt(ban: Ban): void {
    if (ban.until > this.now()) this.bans.add(ban);
  }

  /** Lifts a ban (an admin's decision also forgives the past offenses); false when there was none. */
  async lift(key: string): Promise<boolean> {
    const existed = this.banOf(key) !== undefined;
    this.bans.remove(key);
    await Promise.all([
      this.deps.store.removeBan(key),
      this.deps.store.resetScore(key),
      this.deps.store.clearOffenses(key),
    ]);
    return existed;
  }

  /** Bans in force, newest first. */
  listBans(): Ban[] {
    return this.bans.list(this.now());
  }

  /** Loads the shared bans (at start, and when Redis comes back). */
  async loadShared(): Promise<void> {
    for (const ban of await this.deps.store.loadBans(this.now())) this.bans.add(ban);
  }
}
