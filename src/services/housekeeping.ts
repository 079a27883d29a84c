// Removes records that can only grow otherwise (TTL indexes are not portable to FerretDB): sessions ended
// or expired more than a week ago, spent or expired set-password tokens, and failed-login counters nobody
// has touched for a day that hold no running lock, one-time claims older than any token they guard, and
// week-old client_id records of sends (a retry later than that still finds its message, by a slower query).
import type { ClaimsRepository } from '../repositories/claims.js';
import type { LoginThrottleRepository } from '../repositories/login-throttle.js';
import type { MessagesRepository } from '../repositories/messages.js';
import type { PasswordTokensRepository } from '../repositories/password-tokens.js';
import type { SessionsRepository } from '../repositories/sessions.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const KEEP_ENDED_SESSIONS_MS = 7 * DAY_MS;

export interface SweepResult {
  sessions: number;
  passwordTokens: number;
  loginThrottle: number;
  claims: number;
  messageClientIds: number;
}

export class Housekeeping {
  constructor(
    private readonly repositories: {
      sessions: SessionsRepository;
      passwordTokens: PasswordTokensRepository;
      throttle: LoginThrottleRepository;
      claims: ClaimsRepository;
      messages: MessagesRepository;
    },
    /** The longest a refresh or set-password token lives (its claim can go after that). */
    private readonly maxTokenLifetimeMs: number,
  ) {}

  async sweep(now: Date): Promise<SweepResult> {
    const dayAgo = new Date(now.getTime() - DAY_MS);
    const [sessions, passwordTokens, loginThrottle, claims, messageClientIds] = await Promise.all([
      this.repositories.sessions.deleteEndedBefore(new Date(now.getTime() - KEEP_ENDED_SESSIONS_MS)),
      this.repositories.passwordTokens.deleteSpent(now, dayAgo),
      this.repositories.throttle.deleteIdleBefore(dayAgo),
      // What a claim guards (a refresh token, a set-password token) is dead after the longest lifetime.
      this.repositories.claims.deleteBefore(new Date(now.getTime() - this.maxTokenLifetimeMs)),
      this.repositories.messages.forgetClientIdsBefore(new Date(now.getTime() - 7 * DAY_MS)),
    ]);
    return { sessions, passwordTokens, loginThrottle, claims, messageClientIds };
  }
}
