// Limits password guessing, for logins and for the current-password check of a password change.
// - Per account (known or not, so lockouts reveal nothing): MAX_LOGIN_ATTEMPTS consecutive failures within
//   the failure window lock it, for LOCKOUT_BASE_SECONDS doubling on each repeat up to LOCKOUT_MAX_SECONDS;
//   the escalation is forgotten a day after the last lock.
// - Per client address: beyond IP_MAX_LOGIN_FAILURES failures in the window, 429 until the window ends.
// Each attempt is recorded (and ranked) before the password is checked, so guesses sent in parallel cannot
// all slip in before the first failure is recorded.
import type { Config } from '../config/index.js';
import { Errors, withRetryAfter } from '../errors.js';
import type { ObjectId } from 'mongodb';
import type { LockDoc, LoginThrottleRepository } from '../repositories/login-throttle.js';
import type { AuditService } from '../services/audit.js';
import type { RequestContext } from '../services/context.js';
import type { SecurityEvents } from '../services/security-events.js';

const ESCALATION_MEMORY_MS = 24 * 60 * 60 * 1000;

export interface Attempt {
  email: string;
  accountKey: string;
  ipKey: string;
  /** The account's attempts in the window when this one was counted (this one included). */
  rank: number;
  lockLevel: number;
  ipAttempt: ObjectId;
}

export class LoginGuard {
  constructor(
    private readonly deps: {
      throttle: LoginThrottleRepository;
      audit: AuditService;
      security: SecurityEvents;
      config: Config;
      now: () => Date;
    },
  ) {}

  private get settings() {
    return this.deps.config.auth;
  }

  /** Refuses a locked account or a throttled address; otherwise records the attempt and lets it through. */
  async begin(identifier: string, action: string, context: RequestContext): Promise<Attempt> {
    const email = identifier.trim().toLowerCase();
    const accountKey = `account:${email}`;
    const ipKey = `ip:${context.ip ?? 'unknown'}`;
    const now = this.deps.now();
    const windowMs = this.settings.login_failure_window_s * 1000;
    const windowStart = new Date(now.getTime() - windowMs);
    const { throttle } = this.deps;

    const [[lock], ipFailures] = await Promise.all([
      throttle.findLocks([accountKey]),
      throttle.countAttempts(ipKey, windowStart),
    ]);
    if (ipFailures >= this.settings.ip_max_login_failures) {
      const oldest = (await throttle.oldestAttemptSince(ipKey, windowStart)) ?? now;
      const retryAfter = Math.max(1, (oldest.getTime() + windowMs - now.getTime()) / 1000);
      this.refused(action, email, 'address_throttled', context);
      throw withRetryAfter(new Errors.LOGIN_THROTTLED(Math.ceil(retryAfter)), retryAfter);
    }
    if (lock?.locked_until && lock.locked_until > now)
      this.throwLocked(action, email, lock.locked_until, context);

    const [, ipAttempt] = await Promise.all([
      throttle.recordAttempt(accountKey, now),
      throttle.recordAttempt(ipKey, now),
    ]);
    // Everything recorded so far in the window, this attempt included. Counted after our own insert, so
    // of any number of concurrent attempts at most MAX_LOGIN_ATTEMPTS can see a count within the limit.
    // Attempts before the last lock do not count again once it has ended.
    const since = lock && lock.updated_at > windowStart ? lock.updated_at : windowStart;
    const rank = await throttle.countAttempts(accountKey, since);
    const attempt = { email, accountKey, ipKey, rank, lockLevel: levelNow(lock, now), ipAttempt };
    // Beyond the allowance (parallel guesses): refused without a password check.
    if (rank > this.settings.max_login_attempts) await this.lock(attempt, action, context);
    return attempt;
  }

  /** The password was right: the account's failures are forgotten, and this attempt does not count. */
  async succeeded(attempt: Attempt): Promise<void> {
    await Promise.all([
      this.deps.throttle.forgetAttempts(attempt.accountKey),
      this.deps.throttle.forgetAttempt(attempt.ipAttempt),
    ]);
  }

  /** The password was wrong: locks the account when this was the last allowed attempt. */
  async failed(attempt: Attempt, action: string, context: RequestContext): Promise<void> {
    if (attempt.rank >= this.settings.max_login_attempts) await this.lock(attempt, action, context);
  }

  private async lock(attempt: Attempt, action: string, context: RequestContext): Promise<never> {
    const now = this.deps.now();
    const [current] = await this.deps.throttle.findLocks([attempt.accountKey]);
    // Another request of the same burst locked it already: answer with that lock.
    if (current?.locked_until && current.locked_until > now)
      this.throwLocked(action, attempt.email, current.locked_until, context);
    const seconds = Math.min(
      this.settings.lockout_base_s * 2 ** attempt.lockLevel,
      this.settings.lockout_max_s,
    );
    // Counting starts again from this moment (see `since` in begin).
    await this.deps.throttle.lock(
      attempt.accountKey,
      new Date(now.getTime() + seconds * 1000),
      attempt.lockLevel + 1,
      now,
    );
    this.deps.security.record(
      {
        type: 'login.lockout',
        principal: attempt.accountKey,
        severity: 'warn',
        details: { email: attempt.email, seconds, level: attempt.lockLevel + 1 },
      },
      context,
    );
    this.deps.audit.record(
      {
        action: 'auth.lockout',
        actor_id: null,
        target_type: 'account',
        target_id: attempt.email,
        details: { seconds },
      },
      context,
    );
    throw withRetryAfter(new Errors.ACCOUNT_LOCKED(seconds), seconds);
  }

  private throwLocked(action: string, email: string, until: Date, context: RequestContext): never {
    const retryAfter = Math.max(1, (until.getTime() - this.deps.now().getTime()) / 1000);
    this.refused(action, email, 'locked', context);
    throw withRetryAfter(new Errors.ACCOUNT_LOCKED(Math.ceil(retryAfter)), retryAfter);
  }

  private refused(action: string, email: string, reason: string, context: RequestContext): void {
    this.deps.security.record(
      { type: `${action}.${reason}`, principal: `account:${email}`, severity: 'warn' },
      context,
    );
    this.deps.audit.record(
      {
        action,
        actor_id: null,
        target_type: 'account',
        target_id: email,
        outcome: 'failure',
        details: { reason },
      },
      context,
    );
  }
}

/** The lock level to escalate from: forgotten a day after the last lock ended. */
function levelNow(lock: LockDoc | undefined, now: Date): number {
  if (!lock?.locked_until || now.getTime() - lock.locked_until.getTime() > ESCALATION_MEMORY_MS) return 0;
  return lock.lock_level;
}
