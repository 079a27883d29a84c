// Builds the repositories and services once and shares them: fastify.users, fastify.auth, fastify.audit,
// fastify.securityEvents. Routes call services; services call repositories.
import fp from 'fastify-plugin';
import { LoginThrottleRepository } from '../../repositories/login-throttle.js';
import { PasswordTokensRepository } from '../../repositories/password-tokens.js';
import { SessionsRepository } from '../../repositories/sessions.js';
import { UsersRepository } from '../../repositories/users.js';
import { AuditService } from '../../services/audit.js';
import { AuthService } from '../../services/auth.js';
import { SecurityEvents } from '../../services/security-events.js';
import { UsersService } from '../../services/users.js';

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditService;
    securityEvents: SecurityEvents;
    auth: AuthService;
    users: UsersService;
  }
}

export default fp(
  async function servicesPlugin(fastify) {
    const { config, db } = fastify;
    const usersRepository = new UsersRepository(db);
    const throttle = new LoginThrottleRepository(db);
    const audit = new AuditService(fastify.loggers.audit);
    const securityEvents = new SecurityEvents(fastify.loggers.security);
    const auth = new AuthService({
      users: usersRepository,
      sessions: new SessionsRepository(db),
      throttle,
      jwt: fastify.jwt,
      audit,
      security: securityEvents,
      config,
    });
    const users = new UsersService({
      users: usersRepository,
      throttle,
      passwordTokens: new PasswordTokensRepository(db),
      audit,
      auth: () => auth,
      config,
    });
    fastify.decorate('audit', audit);
    fastify.decorate('securityEvents', securityEvents);
    fastify.decorate('auth', auth);
    fastify.decorate('users', users);

    fastify.database.onReady('first-admin', async () => users.bootstrapAdmin(fastify.log));
  },
  { name: 'services', dependencies: ['config', 'database', 'jwt'] },
);
