// Builds the repositories and services once and shares them: fastify.users, fastify.auth, fastify.audit,
// fastify.securityEvents. Routes call services; services call repositories.
import fp from 'fastify-plugin';
import { ClaimsRepository } from '../../repositories/claims.js';
import { LoginThrottleRepository } from '../../repositories/login-throttle.js';
import { PasswordTokensRepository } from '../../repositories/password-tokens.js';
import { SessionsRepository } from '../../repositories/sessions.js';
import { UsersRepository } from '../../repositories/users.js';
import { AuditService } from '../../services/audit.js';
import { AuthService } from '../../services/auth.js';
import { SecurityEvents } from '../../services/security-events.js';
import { UsersService } from '../../services/users.js';
import { Housekeeping } from '../../services/housekeeping.js';

const HOUSEKEEPING_INTERVAL_MS = 60 * 60 * 1000;

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditService;
    securityEvents: SecurityEvents;
    auth: AuthService;
    users: UsersService;
    housekeeping: Housekeeping;
  }
}

export default fp(
  async function servicesPlugin(fastify) {
    const { config, db } = fastify;
    const usersRepository = new UsersRepository(db);
    const throttle = new LoginThrottleRepository(db);
    const sessions = new SessionsRepository(db);
    const passwordTokens = new PasswordTokensRepository(db);
    const claims = new ClaimsRepository(db);
    const longestTokenMs =
      Math.max(config.auth.session_max_age_s, config.auth.set_password_token_ttl_s) * 1000;
    const housekeeping = new Housekeeping({ sessions, passwordTokens, throttle, claims }, longestTokenMs);
    const audit = new AuditService(fastify.loggers.audit);
    const securityEvents = new SecurityEvents(fastify.loggers.security);
    const auth = new AuthService({
      users: usersRepository,
      sessions,
      throttle,
      claims,
      jwt: fastify.jwt,
      audit,
      security: securityEvents,
      config,
    });
    const users = new UsersService({
      users: usersRepository,
      throttle,
      passwordTokens,
      claims,
      audit,
      auth: () => auth,
      config,
    });
    fastify.decorate('housekeeping', housekeeping);
    fastify.decorate('audit', audit);
    fastify.decorate('securityEvents', securityEvents);
    fastify.decorate('auth', auth);
    fastify.decorate('users', users);

    fastify.database.onReady('first-admin', async () => users.bootstrapAdmin(fastify.log));

    // Hourly clean-up of records that would otherwise grow forever.
    const sweep = setInterval(() => {
      if (!fastify.database.isReady) return;
      housekeeping.sweep(new Date()).then(
        (removed) => fastify.log.info({ removed }, 'stale records removed'),
        (error: unknown) => fastify.log.warn({ err: error }, 'stale record sweep failed'),
      );
    }, HOUSEKEEPING_INTERVAL_MS);
    sweep.unref();
    fastify.addHook('onClose', async () => clearInterval(sweep));
  },
  { name: 'services', dependencies: ['config', 'database', 'jwt'] },
);
