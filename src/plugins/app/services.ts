// Builds the repositories and services once and shares them: fastify.users, fastify.auth, fastify.audit,
// fastify.securityEvents, fastify.channels, fastify.messages, fastify.notifications,
// fastify.announcements and the event bus they publish to (fastify.events). Routes call services;
// services call repositories.
import fp from 'fastify-plugin';
import { AuditRepository } from '../../repositories/audit.js';
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
import { AnnouncementsRepository } from '../../repositories/announcements.js';
import { ChannelsRepository } from '../../repositories/channels.js';
import { MessagesRepository } from '../../repositories/messages.js';
import { NotificationsRepository } from '../../repositories/notifications.js';
import { AnnouncementsService } from '../../services/announcements.js';
import { ChannelsService } from '../../services/channels.js';
import { InProcessEventBus } from '../../services/events.js';
import { MessagesService } from '../../services/messages.js';
import { NotificationsService } from '../../services/notifications.js';
import { OpsService } from '../../services/ops.js';

const HOUSEKEEPING_INTERVAL_MS = 60 * 60 * 1000;

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditService;
    securityEvents: SecurityEvents;
    auth: AuthService;
    users: UsersService;
    housekeeping: Housekeeping;
    /** Realtime events published by the services; the realtime hub delivers them. */
    events: InProcessEventBus;
    channels: ChannelsService;
    messages: MessagesService;
    notifications: NotificationsService;
    announcements: AnnouncementsService;
    /** Administrators' views of the running server: configuration and log files. */
    ops: OpsService;
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
    const audit = new AuditService({
      repository: new AuditRepository(db),
      database: fastify.database,
      mirror: fastify.loggers.audit,
      log: fastify.log,
      timezone: config.server.timezone,
      findUserId: async (email) => (await usersRepository.findByEmail(email))?._id ?? null,
    });
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

    const events = new InProcessEventBus();
    // On FerretDB only id lookups use an index: hot reads go by id there (repositories/messages.ts).
    const pointLookups = () => fastify.database.state.engine === 'ferretdb';
    const channelsRepository = new ChannelsRepository(db, pointLookups);
    const messagesRepository = new MessagesRepository(db, pointLookups);
    const housekeeping = new Housekeeping(
      { sessions, passwordTokens, throttle, claims, messages: messagesRepository },
      longestTokenMs,
    );
    const channels = new ChannelsService({
      channels: channelsRepository,
      users: usersRepository,
      audit,
      events,
      config,
      log: fastify.log,
    });
    const notifications = new NotificationsService({
      notifications: new NotificationsRepository(db),
      channels: channelsRepository,
      users: usersRepository,
      events,
      config,
    });
    const messages = new MessagesService({
      messages: messagesRepository,
      channels,
      users,
      notifications,
      audit,
      events,
      sendLimiter: fastify.limits.messages,
      // Without Redis there is no other instance (several instances on one database need REDIS_URL).
      soleWriter: () => !config.redis.url,
      database: {
        // Refusing a send because the database is away asks the monitor to look again at once, so sends
        // resume as soon as it is back rather than at the next periodic check.
        isDown: () => {
          if (fastify.database.state.status !== 'down') return false;
          void fastify.database.check();
          return true;
        },
        unavailable: (error) => fastify.database.markUnavailable(error),
      },
      config,
      log: fastify.log,
    });
    const announcements = new AnnouncementsService({
      announcements: new AnnouncementsRepository(db),
      claims,
      audit,
      events,
      config,
    });
    // Department and general channel membership follows every user creation, import and move.
    users.onUserChanged((change) => channels.onUserChanged(change));

    fastify.decorate('housekeeping', housekeeping);
    fastify.decorate('events', events);
    fastify.decorate('channels', channels);
    fastify.decorate('messages', messages);
    fastify.decorate('notifications', notifications);
    fastify.decorate('announcements', announcements);
    fastify.decorate('ops', new OpsService(config, fastify.configSources, audit));
    fastify.decorate('audit', audit);
    fastify.decorate('securityEvents', securityEvents);
    fastify.decorate('auth', auth);
    fastify.decorate('users', users);

    fastify.database.onReady('first-admin', async () => users.bootstrapAdmin(fastify.log));
    fastify.database.onReady('general-channel', async () => void (await channels.ensureGeneral()));
    // Heals memberships a crash or an outage left behind: in the background once ready (it reads every
    // user and membership, which must not hold up readiness), then hourly with the sweep.
    let reconciling: Promise<void> | undefined;
    const reconcileMemberships = () =>
      (reconciling ??= channels
        .reconcile()
        .then(
          (result) => {
            if (result.added || result.removed || result.lists_corrected)
              fastify.log.info(result, 'channel memberships reconciled');
          },
          (error: unknown) => fastify.log.warn({ err: error }, 'channel membership reconcile failed'),
        )
        .finally(() => (reconciling = undefined)));
    void fastify.database.whenReady().then(reconcileMemberships);
    // Announcements that fell due while the server was down go out now.
    fastify.database.onReady('due-announcements', async () => {
      await announcements.publishDue();
    });
    const announcementCheck = setInterval(() => {
      if (!fastify.database.isReady) return;
      announcements
        .publishDue()
        .catch((error: unknown) => fastify.log.warn({ err: error }, 'scheduled announcement check failed'));
    }, config.announcements.check_interval_s * 1000);
    announcementCheck.unref();

    // Hourly clean-up of records that would otherwise grow forever.
    const sweep = setInterval(() => {
      if (!fastify.database.isReady) return;
      housekeeping.sweep(new Date()).then(
        (removed) => fastify.log.info({ removed }, 'stale records removed'),
        (error: unknown) => fastify.log.warn({ err: error }, 'stale record sweep failed'),
      );
      void reconcileMemberships();
    }, HOUSEKEEPING_INTERVAL_MS);
    sweep.unref();
    fastify.addHook('onClose', async () => {
      clearInterval(sweep);
      clearInterval(announcementCheck);
      await reconciling; // never rejects; the database must stay open until it ends
      // Counters written in the background go out before the database closes.
      await channels
        .flushCounters()
        .catch((error: unknown) =>
          fastify.log.warn({ err: error }, 'channel counters not written at shutdown'),
        );
      // Last: the work above (and every plugin closed before this one) may still record audit events.
      await audit.close();
    });
  },
  { name: 'services', dependencies: ['config', 'database', 'jwt', 'limits'] },
);
