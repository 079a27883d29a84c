// Login, sessions and token checks.
// - Access tokens: short-lived JWTs (HS256 only) with sub, sid, roles, exp.
// - Refresh tokens: "<session id>.<random>", stored only as a SHA-256 hash; each refresh rotates it, and a
//   token presented twice revokes the whole session (someone else has a copy).
// - Every authenticated request checks that its session is still open and its user active. That answer is
//   cached for at most one second, so a revocation takes effect within a second on every instance.
// - Lockout: consecutive failures per account (known or not: no enumeration) lock it with a doubling delay;
//   failures per client address beyond a limit slow credential stuffing down.
import { EventEmitter } from 'node:events';
import type { JWT } from '@fastify/jwt';
import type { Actor, Role } from '../auth/permissions.js';
import { LoginGuard } from '../auth/login-guard.js';
import { decoyPasswordHash, verifyPassword } from '../auth/passwords.js';
import type { Config } from '../config/index.js';
import { Errors } from '../errors.js';
import { randomToken, sha256 } from '../lib/crypto.js';
import type { ClaimsRepository } from '../repositories/claims.js';
import type { LoginThrottleRepository } from '../repositories/login-throttle.js';
import type { SessionDoc, SessionsRepository } from '../repositories/sessions.js';
import type { UserDoc, UsersRepository } from '../repositories/users.js';
import type { AuditService } from './audit.js';
import type { Principal, RequestContext } from './context.js';
import { KeyedQueue } from '../lib/keyed-queue.js';
import type { SecurityEvents } from './security-events.js';

/** How long a session check is trusted without asking the database again. */
export const SESSION_CACHE_MS = 1_000;
const SESSION_CACHE_MAX = 50_000;
/** How many earlier refresh tokens per session are recognised when replayed. */
const REMEMBERED_REFRESH_TOKENS = 20;

export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

interface AccessClaims {
  sub: string;
  sid: string;
  roles: Role[];
}

interface CachedSession {
  principal: Principal | null;
  checkedAt: number;
}

export interface SessionRevokedEvent {
  sessionId: string;
  userId: string;
  reason: string;
}

export class AuthService {
  /** `session.revoked` lets the realtime hub close that session's sockets (realtime issue). */
  readonly events = new EventEmitter<{ 'session.revoked': [SessionRevokedEvent] }>();
  private readonly sessionCache = new Map<string, CachedSession>();
  private readonly guard: LoginGuard;
  private readonly sessionChecks = new Map<string, Promise<Principal | null>>();
  /**
   * Writes to one session take turns in this process: FerretDB does not isolate concurrent updates of a
   * document, so a "last used" touch or a rotation racing a revocation could write the session back open.
   */
  private readonly sessionTurns = new KeyedQueue();

  constructor(
    private readonly deps: {
      users: UsersRepository;
      sessions: SessionsRepository;
      throttle: LoginThrottleRepository;
      claims: ClaimsRepository;
      jwt: JWT;
      audit: AuditService;
      security: SecurityEvents;
      config: Config;
      now?: () => Date;
    },
  ) {
    this.guard = new LoginGuard({ ...deps, now: () => this.now() });
  }

  private get settings() {
    return this.deps.config.auth;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  async login(
    identifier: string,
    password: string,
    context: RequestContext,
  ): Promise<TokenPair & { user: UserDoc }> {
    const attempt = await this.guard.begin(identifier, 'auth.login', context);
    const user = await this.deps.users.findByEmail(attempt.email);
    // Unknown accounts cost a real argon2 verification too, so timing does not reveal who exists.
    const valid = await verifyPassword(user?.password_hash ?? (await decoyPasswordHash()), password);
    if (!user || !user.password_hash || !valid) {
      this.deps.audit.record(
        {
          action: 'auth.login',
          actor_id: user?._id ?? null,
          target_type: 'account',
          target_id: attempt.email,
          outcome: 'failure',
          details: { reason: 'bad_credentials' },
        },
        context,
      );
      this.deps.security.record(
        {
          type: 'login.failure',
          principal: user?._id ?? attempt.accountKey,
          details: { email: attempt.email },
        },
        context,
      );
      await this.guard.failed(attempt, 'auth.login', context);
      throw new Errors.INVALID_CREDENTIALS();
    }
    const now = this.now();
    if (user.status !== 'active') {
      this.deps.audit.record(
        {
          action: 'auth.login',
          actor_id: user._id,
          target_type: 'user',
          target_id: user._id,
          outcome: 'failure',
          details: { reason: 'disabled' },
        },
        context,
      );
      this.deps.security.record({ type: 'login.disabled_account', principal: user._id }, context);
      throw new Errors.ACCOUNT_DISABLED();
    }

    await this.guard.succeeded(attempt);
    const pair = await this.openSession(user, context);
    await this.deps.users.touchLastSeen(user._id, now);
    this.deps.audit.record(
      { action: 'auth.login', actor_id: user._id, target_type: 'user', target_id: user._id },
      context,
    );
    this.deps.security.record({ type: 'login.success', principal: user._id }, context);
    return { ...pair, user: { ...user, last_seen_at: now } };
  }

  /**
   * Checks a signed-in user's current password (password change) under the same guessing limits as login:
   * a stolen access token must not become a way to brute-force the password.
   */
  async verifyCurrentPassword(user: UserDoc, password: string, context: RequestContext): Promise<boolean> {
    const attempt = await this.guard.begin(user.email, 'user.password_change', context);
    const valid = !!user.password_hash && (await verifyPassword(user.password_hash, password));
    if (valid) await this.guard.succeeded(attempt);
    else await this.guard.failed(attempt, 'user.password_change', context);
    return valid;
  }

  private async openSession(user: UserDoc, context: RequestContext): Promise<TokenPair> {
    const now = this.now();
    const sessionId = randomToken(18);
    const refreshToken = `${sessionId}.${randomToken(32)}`;
    const session: SessionDoc = {
      _id: sessionId,
      user_id: user._id,
      refresh_hash: sha256(refreshToken),
      previous_refresh_hashes: [],
      created_at: now,
      last_used_at: now,
      expires_at: new Date(now.getTime() + this.settings.session_max_age_s * 1000),
      revoked_at: null,
      revoked_reason: null,
      ip: context.ip,
      user_agent: context.userAgent?.slice(0, 300) ?? null,
    };
    await this.deps.sessions.insert(session);
    return { ...this.signAccess(user, sessionId), refresh_token: refreshToken };
  }

  private signAccess(user: UserDoc, sessionId: string): Omit<TokenPair, 'refresh_token'> {
    const claims: AccessClaims = { sub: user._id, sid: sessionId, roles: user.roles };
    const ttl = this.settings.access_token_ttl_s;
    return {
      access_token: this.deps.jwt.sign(claims, { expiresIn: ttl }),
      token_type: 'Bearer',
      expires_in: ttl,
    };
  }

  async refresh(refreshToken: string, context: RequestContext): Promise<TokenPair & { user: UserDoc }> {
    const sessionId = refreshToken.split('.')[0] ?? '';
    const session = sessionId ? await this.deps.sessions.findById(sessionId) : null;
    if (!session || session.revoked_at) {
      this.deps.security.record(
        { type: 'token.refresh_invalid', principal: session?.user_id ?? `ip:${context.ip}` },
        context,
      );
      throw new Errors.INVALID_TOKEN();
    }
    const now = this.now();
    if (this.isExpired(session, now)) {
      await this.revokeSession(session._id, 'expired');
      throw new Errors.INVALID_TOKEN();
    }
    const presented = sha256(refreshToken);
    const isCurrent = presented === session.refresh_hash;
    if (!isCurrent && !session.previous_refresh_hashes.includes(presented)) {
      // Not a token this session ever issued (a guess built from the visible session id): refuse it,
      // but do not let a guess sign the owner out.
      this.deps.security.record({ type: 'token.refresh_invalid', principal: session.user_id }, context);
      throw new Errors.INVALID_TOKEN();
    }
    // Only one of two concurrent refreshes with the same token may rotate it (see ClaimsRepository).
    const firstUse = isCurrent && (await this.deps.claims.claim(`refresh:${presented}`, now));
    const rotated = firstUse ? await this.rotate(session, now) : null;
    if (!rotated) {
      // An earlier token again (or the current one losing a race to its own copy): two parties hold
      // this session's tokens, so the session is compromised and nobody keeps it.
      await this.revokeSession(session._id, 'refresh_token_reused');
      this.deps.security.record(
        {
          type: 'token.refresh_reuse',
          principal: session.user_id,
          severity: 'warn',
          details: { session_id: session._id },
        },
        context,
      );
      this.deps.audit.record(
        {
          action: 'session.revoke',
          actor_id: null,
          target_type: 'session',
          target_id: session._id,
          details: { reason: 'refresh_token_reused', user_id: session.user_id },
        },
        context,
      );
      throw new Errors.INVALID_TOKEN();
    }
    const user = await this.deps.users.findById(session.user_id);
    if (!user || user.status !== 'active') {
      await this.revokeSession(session._id, 'user_disabled');
      throw new Errors.INVALID_TOKEN();
    }
    this.sessionCache.delete(session._id);
    return { ...this.signAccess(user, session._id), refresh_token: rotated.token, user };
  }

  private async rotate(session: SessionDoc, now: Date): Promise<{ token: string } | null> {
    const token = `${session._id}.${randomToken(32)}`;
    const updated = await this.sessionTurns.run(session._id, () =>
      this.deps.sessions.rotate(session, sha256(token), REMEMBERED_REFRESH_TOKENS, now),
    );
    return updated ? { token } : null;
  }

  async logout(principal: Principal, context: RequestContext): Promise<void> {
    await this.revokeSession(principal.sessionId, 'logout');
    this.deps.audit.record(
      {
        action: 'auth.logout',
        actor_id: principal.id,
        target_type: 'session',
        target_id: principal.sessionId,
      },
      context,
    );
  }

  /** The principal behind an access token, or INVALID_TOKEN. */
  async authenticate(accessToken: string): Promise<Principal> {
    const claims = this.verifyAccess(accessToken);
    const principal = await this.sessionPrincipal(claims.sid);
    if (!principal || principal.id !== claims.sub) throw new Errors.INVALID_TOKEN();
    return principal;
  }

  /**
   * As `authenticate`, for a socket that is opening: read fresh, and written back as rarely as the
   * periodic check (`recheckSession`), since thousands of sockets may reconnect at once.
   */
  async authenticateSocket(accessToken: string): Promise<Principal> {
    const claims = this.verifyAccess(accessToken);
    const principal = await this.recheckSession(claims.sid);
    if (!principal || principal.id !== claims.sub) throw new Errors.INVALID_TOKEN();
    return principal;
  }

  private verifyAccess(accessToken: string): AccessClaims & { sid: string; sub: string } {
    let claims: AccessClaims;
    try {
      claims = this.deps.jwt.verify<AccessClaims>(accessToken);
    } catch {
      throw new Errors.INVALID_TOKEN();
    }
    if (typeof claims.sid !== 'string' || typeof claims.sub !== 'string') throw new Errors.INVALID_TOKEN();
    return claims as AccessClaims & { sid: string; sub: string };
  }

  /** Drops what this process remembers of a session (revoked by another instance). */
  forgetSession(sessionId: string): void {
    this.sessionCache.delete(sessionId);
  }

  /** The principal of a live session, from the short cache; null when revoked, expired or unknown. */
  sessionPrincipalFor(sessionId: string): Promise<Principal | null> {
    return this.sessionPrincipal(sessionId);
  }

  /**
   * The session's principal, from a check at most SESSION_CACHE_MS old. Past half that age the answer is
   * refreshed in the background, and concurrent checks of one session share one lookup, so steady traffic
   * never waits on the database and a cache expiry never sends a burst of identical queries.
   */
  private async sessionPrincipal(sessionId: string): Promise<Principal | null> {
    const cached = this.sessionCache.get(sessionId);
    const age = cached ? Date.now() - cached.checkedAt : Number.POSITIVE_INFINITY;
    if (cached && age < SESSION_CACHE_MS) {
      if (age >= SESSION_CACHE_MS / 2) void this.checkSession(sessionId).catch(() => undefined);
      return cached.principal;
    }
    return this.checkSession(sessionId);
  }

  private checkSession(sessionId: string): Promise<Principal | null> {
    let check = this.sessionChecks.get(sessionId);
    if (!check) {
      check = this.loadSessionPrincipal(sessionId, Date.now()).finally(() =>
        this.sessionChecks.delete(sessionId),
      );
      this.sessionChecks.set(sessionId, check);
    }
    return check;
  }

  /**
   * For connections that stay open (the realtime hub's periodic check): the session's principal now, or
   * null. An open socket counts as use of its session, but this writes at most once per half idle
   * timeout, so thousands of open sockets cost a handful of writes a second (on FerretDB every write
   * waits its turn behind the others, sends included).
   */
  recheckSession(sessionId: string): Promise<Principal | null> {
    return this.loadSessionPrincipal(sessionId, Date.now(), (this.settings.session_timeout_s * 1000) / 2);
  }

  private async loadSessionPrincipal(
    sessionId: string,
    startedAt: number,
    // Keep the idle timer moving, but write at most about once a minute per session.
    touchEveryMs = Math.min(60_000, (this.settings.session_timeout_s * 1000) / 4),
  ): Promise<Principal | null> {
    const session = await this.deps.sessions.findById(sessionId);
    const now = this.now();
    let principal: Principal | null = null;
    if (session && !session.revoked_at && !this.isExpired(session, now)) {
      const user = await this.deps.users.findById(session.user_id);
      if (user && user.status === 'active') {
        principal = {
          id: user._id,
          sessionId,
          email: user.email,
          name: user.name,
          department: user.department,
          roles: user.roles,
        };
        if (now.getTime() - session.last_used_at.getTime() > touchEveryMs) {
          void this.sessionTurns
            .run(sessionId, () => this.deps.sessions.touch(sessionId, now))
            .catch(() => undefined);
          void this.deps.users.touchLastSeen(user._id, now).catch(() => undefined);
        }
      }
    }
    if (this.sessionCache.size >= SESSION_CACHE_MAX)
      this.sessionCache.delete(this.sessionCache.keys().next().value!);
    // Stamped with when the check began: the answer is never trusted longer than SESSION_CACHE_MS after
    // the database was asked.
    this.sessionCache.set(sessionId, { principal, checkedAt: startedAt });
    return principal;
  }

  private isExpired(session: SessionDoc, now: Date): boolean {
    const idleMs = now.getTime() - session.last_used_at.getTime();
    return session.expires_at <= now || idleMs > this.settings.session_timeout_s * 1000;
  }

  /** Ends a session; true when this call ended it. */
  async revokeSession(sessionId: string, reason: string): Promise<boolean> {
    const revoked = await this.sessionTurns.run(sessionId, () =>
      this.deps.sessions.revoke(sessionId, reason, this.now()),
    );
    this.sessionCache.delete(sessionId);
    if (revoked) this.events.emit('session.revoked', { sessionId, userId: revoked.user_id, reason });
    return revoked !== null;
  }

  /** Revokes all of a user's sessions (except `keep`, the caller's own when changing a password). */
  async revokeUserSessions(
    userId: string,
    reason: string,
    actor: Actor,
    context: RequestContext,
    keep?: string,
  ): Promise<number> {
    const ids: string[] = [];
    // One by one, each in its session's turn (see sessionTurns).
    for (const sessionId of await this.deps.sessions.openIdsOfUser(userId, keep)) {
      if (await this.revokeSession(sessionId, reason)) ids.push(sessionId);
    }
    if (ids.length) {
      this.deps.audit.record(
        {
          action: 'session.revoke_all',
          actor_id: actor.id,
          target_type: 'user',
          target_id: userId,
          details: { reason, count: ids.length },
        },
        context,
      );
    }
    return ids.length;
  }

  /** Drops cached answers for a user's sessions (after a role or status change). */
  forgetUser(userId: string): void {
    for (const [sessionId, cached] of this.sessionCache) {
      if (cached.principal?.id === userId) this.sessionCache.delete(sessionId);
    }
  }
}
