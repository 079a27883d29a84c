// Limits password guessing, for logins and for the current-password check of a password change.
// - Per account (known or not, so lockouts reveal nothing): MAX_LOGIN_ATTEMPTS consecutive failures within
//   the failure window lock it, for LOCKOUT_BASE_SECONDS doubling on each repeat up to LOCKOUT_MAX_SECONDS;
//   the escalation is forgotten a day after the last lock.
// - Per client address: beyond IP_MAX_LOGIN_FAILURES failures in the window, 429 until the window ends.
// Each attempt is counted before the password is checked, so guesses sent in parallel cannot all slip in
// before the first failure is recorded.
import type { Config } from '../config/index.js';
import { Errors, withRetryAfter } from '../errors.js';
import type { LoginThrottleRepository, ThrottleDoc } from '../repositories/login-throttle.js';
import type { AuditService } from '../services/audit.js';
import type { RequestContext } from '../services/context.js';
import type { SecurityEvents } from '../services/security-events.js';

const ESCALATION_MEMORY_MS = 24 * 60 * 60 * 1000;

export interface Attempt {
  email: string;
  accountKey: string;
  ipKey: string;
  /** The account's count including this attempt. */
  failures: number;
  lockLevel: number;
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

  /** Refuses a locked account or a throttled address; otherwise counts the attempt and lets it through. */
  async begin(identifier: string, action: string, context: RequestContext): Promise<Attempt> {
    const email = identifier.trim().toLowerCase();
    const accountKey = `account:${email}`;
    const ipKey = `ip:${context.ip ?? 'unknown'}`;
    const now = this.deps.now();
    const windowMs = this.settings.login_failure_window_s * 1000;

    const states = await this.deps.throttle.findMany([accountKey, ipKey]);
    const ip = states.find((s) => s._id === ipKey);
    if (
      ip &&
      ip.failures >= this.settings.ip_max_login_failures &&
      now.getTime() - ip.window_started_at.getTime() < windowMs
    ) {
      const retryAfter = (ip.window_started_at.getTime() + windowMs - now.getTime()) / 1000;
      this.refused(action, email, 'address_throttled', context);
      throw withRetryAfter(new Errors.LOGIN_THROTTLED(Math.ceil(retryAfter)), retryAfter);
    }
    const account = states.find((s) => s._id === accountKey);
    if (account?.locked_until && account.locked_until > now)
      this.throwLocked(action, email, account.locked_until, context);

    const counted = await this.count(accountKey, now, windowMs);
    await this.count(ipKey, now, windowMs);
    const attempt = {
      email,
      accountKey,
      ipKey,
      failures: counted.failures,
      lockLevel: levelNow(counted, now),
    };
    // Over the limit already: parallel guesses beyond the allowance are refused without a check.
    if (counted.failures > this.settings.max_login_attempts) await this.lock(attempt, action, context);
    return attempt;
  }

  async succeeded(attempt: Attempt): Promise<void> {
    const now = this.deps.now();
    await Promise.all([
      this.deps.throttle.clearFailures(attempt.accountKey, now),
      this.deps.throttle.undoFailure(attempt.ipKey),
    ]);
  }

  /** The password was wrong: locks the account when this was the last allowed attempt. */
  async failed(attempt: Attempt, action: string, context: RequestContext): Promise<void> {
    if (attempt.failures >= this.settings.max_login_attempts) await this.lock(attempt, action, context);
  }

  private async count(key: string, now: Date, windowMs: number): Promise<ThrottleDoc> {
    const doc = await this.deps.throttle.addFailure(key, now);
    if (now.getTime() - doc.window_started_at.getTime() < windowMs) return doc;
    // Failures long ago do not add up with today's typo.
    await this.deps.throttle.resetWindow(key, now);
    return { ...doc, failures: 1, window_started_at: now };
  }

  private async lock(attempt: Attempt, action: string, context: RequestContext): Promise<never> {
    const now = this.deps.now();
    const seconds = Math.min(
      this.settings.lockout_base_s * 2 ** attempt.lockLevel,
      this.settings.lockout_max_s,
    );
    const until = new Date(now.getTime() + seconds * 1000);
    if (await this.deps.throttle.lock(attempt.accountKey, until, attempt.lockLevel + 1, now)) {
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
    // Another request locked it first: answer with that lock.
    const [state] = await this.deps.throttle.findMany([attempt.accountKey]);
    this.throwLocked(action, attempt.email, state?.locked_until ?? until, context);
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
function levelNow(state: ThrottleDoc, now: Date): number {
  if (!state.locked_until || now.getTime() - state.locked_until.getTime() > ESCALATION_MEMORY_MS) return 0;
  return state.lock_level;
}
