// The detection plugin: every HTTP request and every WebSocket frame passes through one scoring engine
// (src/security/engine.ts). Off with DETECTION_ENABLED=false.
//
// Who is judged: the signed-in user when there is one, else the client address. A request without a
// credential is judged (and refused, if its address is banned) in onRequest; one with a credential waits
// for authentication and is judged as its user in preValidation, so one attacker behind an office's
// address never locks out the colleagues who share it. What only the answer tells (a bad token, a 404, a
// 429) is scored in onResponse. Services report logins and refresh-token reuse; the event bus shows DMs.
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { Errors } from '../../errors.js';
import { SecurityRepository } from '../../repositories/security.js';
import { BehaviourRules } from '../../security/behaviour.js';
import {
  DetectionEngine,
  ipPrincipal,
  userPrincipal,
  type EventRef,
  type SecurityEventRecord,
  type Subject,
} from '../../security/engine.js';
import { inspectBody, inspectField, inspectFrame, inspectRequestHead } from '../../security/inspect.js';
import type { FiredRule } from '../../security/rules.js';
import {
  MemorySecurityStore,
  RedisSecurityStore,
  type Ban,
  type SecurityStore,
} from '../../security/store.js';
import { CLOSE, type Recipient } from '../../realtime/connection.js';
import { SecurityService } from '../../services/security.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Null when DETECTION_ENABLED=false. */
    detection: Detection | null;
    security: SecurityService | null;
  }
  interface FastifyRequest {
    /** Rules the request's head fired, waiting for its principal to be known. */
    detectionPending: FiredRule[] | undefined;
  }
  interface FastifyContextConfig {
    /** The route authenticates on its own (the WebSocket upgrade): bans are checked by the route. */
    ownAuthentication?: boolean;
  }
}

/** 404 codes of lookups by id or name: a burst of them is enumeration. */
const LOOKUP_MISSES = new Set(['USER_NOT_FOUND', 'CHANNEL_NOT_FOUND', 'MESSAGE_NOT_FOUND', 'FILE_NOT_FOUND']);

/** The pieces the routes and tests use. */
export interface Detection {
  engine: DetectionEngine;
  /** The ban that refuses a socket: its user's, or its address's before authentication. */
  socketBan(userId: string | null, ip: string | null): Ban | undefined;
  /** A socket upgrade (churn is scored per user, or per address when unauthenticated). */
  socketOpened(request: FastifyRequest, userId: string | null): void;
  /** A structural value the plugin cannot see in the body (an uploaded file's name). */
  inspectValue(request: FastifyRequest, value: string, where: string): Promise<void>;
  /** Waits until every assessment started so far is finished (tests). */
  settled(): Promise<void>;
}

function blocked(engine: DetectionEngine, ban: Ban): Error {
  const seconds = engine.retryAfter(ban);
  return Object.assign(new Errors.BLOCKED(String(seconds)), { retryAfterMs: seconds * 1000 });
}

/** Reads the header of a JWT without trusting it: `alg: none` is an attempt to skip the signature. */
function asksForNoSignature(authorization: string | undefined): boolean {
  const token = /^Bearer\s+([A-Za-z0-9_-]+)\./i.exec(authorization ?? '')?.[1];
  if (!token || token.length > 400) return false;
  try {
    const header = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { alg?: unknown };
    return typeof header.alg === 'string' && header.alg.toLowerCase() === 'none';
  } catch {
    return false;
  }
}

export default fp(
  async function detectionPlugin(fastify) {
    const { config } = fastify;
    if (!config.security.enabled) {
      fastify.decorate('detection', null);
      fastify.decorate('security', null);
      return;
    }
    const settings = config.security;
    const halfLifeMs = settings.score_half_life_s * 1000;
    const memory = new MemorySecurityStore(
      halfLifeMs,
      settings.offense_memory_s * 1000,
      settings.max_principals,
    );
    let store: SecurityStore = memory;
    if (config.redis.url) {
      const redis = new Redis(config.redis.url, {
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        connectTimeout: 1000,
      });
      let warned = false;
      redis.on('error', () => undefined); // reported by the calls that fail
      store = new RedisSecurityStore(redis, memory, halfLifeMs, settings.offense_memory_s * 1000, (error) => {
        if (!warned)
          fastify.log.warn({ err: error }, 'detection: Redis unavailable, scoring on this instance alone');
        warned = true;
      });
    }

    const { hub, cluster } = fastify.realtime;
    let adminIds: { ids: Promise<string[]>; at: number } | undefined;
    const currentAdmins = () => {
      if (!adminIds || Date.now() - adminIds.at > 30_000)
        adminIds = { ids: fastify.users.activeAdminIds().catch(() => []), at: Date.now() };
      return adminIds.ids;
    };

    // The service records the engine's events and the engine decides for the service: each needs the
    // other, so the service reaches the engine through a function.
    const service = new SecurityService({
      engine: () => engine,
      repository: new SecurityRepository(fastify.db),
      audit: fastify.audit,
      log: fastify.loggers.security,
      databaseReady: () => fastify.database.isReady,
      lifted: (key) => cluster.publish({ kind: 'security_unban', key }),
    });
    const engine: DetectionEngine = new DetectionEngine({
      config: settings,
      store,
      record: (event) => service.record(event),
      alert: (event) =>
        void currentAdmins().then((userIds) =>
          fastify.events.publish(alertFrame(event), { kind: 'users', userIds }),
        ),
      banned: (ban, event) => {
        closeBanned(ban);
        cluster.publish({ kind: 'security_ban', ban });
        service.banned(ban, event);
      },
      count: fastify.metrics ? (rule, action) => fastify.metrics!.detectionEvent(rule, action) : undefined,
    });

    function closeBanned(ban: Ban): void {
      if (ban.key.startsWith('user:')) hub.closeUser(ban.key.slice(5), CLOSE.BLOCKED, 'blocked');
    }
    cluster.onMessage((message) => {
      if (message.kind === 'security_ban') {
        engine.adopt(message.ban);
        closeBanned(message.ban);
      } else if (message.kind === 'security_unban') engine.bans.remove(message.key);
    });
    const loadShared = () =>
      engine
        .loadShared()
        .catch((error: unknown) => fastify.log.warn({ err: error }, 'detection: shared bans not loaded'));
    await loadShared();
    cluster.onReconnect(() => void loadShared());

    // ---- assessing ----
    const behaviour = new BehaviourRules(config.auth.login_failure_window_s * 1000);
    /** Work started but not awaited by anyone (settled() waits for it: shutdown, tests). */
    const inFlight = new Set<Promise<unknown>>();
    function track<T>(work: Promise<T>): Promise<T> {
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work)).catch(() => undefined);
      return work;
    }
    const assess = (subject: Subject, fired: FiredRule[], ref: EventRef) =>
      track(engine.assess(subject, fired, ref));
    /** Scores in the background (nothing waits on the answer). */
    function assessLater(subject: Subject, fired: FiredRule[], ref: EventRef): void {
      if (fired.length === 0) return;
      assess(subject, fired, ref).catch((error: unknown) =>
        fastify.log.warn({ err: error }, 'detection: assessment failed'),
      );
    }
    const addressOf = (ip: string | null | undefined): Subject => ({
      principal: ipPrincipal(ip),
      user_id: null,
      ip: ip ?? null,
    });
    const userOf = (userId: string, ip: string | null): Subject => ({
      principal: userPrincipal(userId),
      user_id: userId,
      ip,
    });
    const requestRef = (request: FastifyRequest): EventRef => ({
      request_id: request.id,
      method: request.method,
      path: (request.url.split('?', 1)[0] ?? '').slice(0, 300),
    });

    /** Scores the rules, then lets the request on or refuses it with the ban it earned. */
    function judge(
      request: FastifyRequest,
      subject: Subject,
      fired: FiredRule[],
      done: (error?: Error) => void,
    ): void {
      assess(subject, fired, requestRef(request)).then(
        (decision) => done(decision.ban ? blocked(engine, decision.ban) : undefined),
        (error: unknown) => {
          request.log.warn({ err: error }, 'detection: assessment failed');
          done(); // detection failing never takes the API down with it
        },
      );
    }

    fastify.decorateRequest('detectionPending', undefined);

    fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done) => {
      const fired = inspectRequestHead({
        path: request.url.split('?', 1)[0] ?? '',
        query: request.query,
        headers: request.headers,
        notFound: request.is404,
      });
      const ownAuthentication = request.routeOptions.config.ownAuthentication === true;
      if (request.headers.authorization !== undefined || ownAuthentication) {
        // Judged once its user is known (or, if authentication fails, as its address in onResponse).
        if (fired.length > 0) request.detectionPending = fired;
        return done();
      }
      const ban = engine.banOf(ipPrincipal(request.ip));
      if (ban) return done(blocked(engine, ban));
      if (fired.length === 0) return done();
      judge(request, addressOf(request.ip), fired, done);
    });

    fastify.addHook('preValidation', (request: FastifyRequest, _reply: FastifyReply, done) => {
      if (request.routeOptions.config.ownAuthentication) return done();
      const userId = (request.principal as { id?: string } | null)?.id;
      const now = Date.now();
      if (userId) {
        const ban = engine.banOf(userPrincipal(userId));
        if (ban) return done(blocked(engine, ban));
      } else if (request.headers.authorization !== undefined) {
        // A public route called with a credential it does not check (login): judged as the address.
        const ban = engine.banOf(ipPrincipal(request.ip));
        if (ban) return done(blocked(engine, ban));
      }
      const pending = request.detectionPending;
      request.detectionPending = undefined;
      const body = inspectBody(request.body);
      const rate = userId ? behaviour.request(userId, now) : [];
      if (!pending && body.length === 0 && rate.length === 0) return done();
      const fired = [...(pending ?? []), ...body, ...rate];
      judge(request, userId ? userOf(userId, request.ip) : addressOf(request.ip), fired, done);
    });

    fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
      done();
      if (request.errorCode === 'BLOCKED') return;
      const userId = (request.principal as { id?: string } | null)?.id ?? null;
      const subject = userId ? userOf(userId, request.ip) : addressOf(request.ip);
      const fired = request.detectionPending ?? [];
      request.detectionPending = undefined;
      const now = Date.now();
      const status = reply.statusCode;
      if (status === 401 && request.errorCode === 'INVALID_TOKEN') {
        if (asksForNoSignature(request.headers.authorization))
          fired.push({ id: 'protocol.jwt_alg_none', where: 'header.authorization' });
        fired.push(...behaviour.badToken(subject.principal, now));
      } else if (status === 404) {
        if (request.is404) fired.push(...behaviour.routeMissed(subject.principal, now));
        else if (LOOKUP_MISSES.has(request.errorCode ?? ''))
          fired.push(...behaviour.lookupMissed(subject.principal, now));
      } else if (status === 429) {
        fired.push({ id: 'flood.rate_limited' });
      }
      assessLater(subject, fired, requestRef(request));
    });

    // ---- what the services tell ----
    fastify.securityEvents.subscribe((event, context) => {
      const now = Date.now();
      const ref: EventRef = { request_id: context.requestId };
      if (event.type === 'login.failure') {
        const account = typeof event.details?.email === 'string' ? event.details.email : event.principal;
        assessLater(addressOf(context.ip), behaviour.loginFailed(ipPrincipal(context.ip), account, now), ref);
      } else if (event.type === 'login.success' && context.ip) {
        const userId = event.principal;
        track(
          service.rememberLogin(userId, context.ip, context.userAgent ?? '').then(
            (seen) => {
              if (seen === 'new')
                assessLater(userOf(userId, context.ip), [{ id: 'anomaly.new_login_context' }], ref);
            },
            (error: unknown) => fastify.log.warn({ err: error }, 'detection: login context not checked'),
          ),
        );
      } else if (event.type === 'token.refresh_reuse') {
        // The account's owner is more likely the victim: the address that replayed the token is scored.
        assessLater(addressOf(context.ip), [{ id: 'brute_force.refresh_reuse' }], ref);
      } else if (event.type === 'token.refresh_invalid') {
        assessLater(addressOf(context.ip), behaviour.badToken(ipPrincipal(context.ip), now), ref);
      }
    });

    // Direct messages to many distinct people, however they were sent (REST or socket).
    const stopWatchingMessages = fastify.events.subscribe((event) => {
      if (
        event.channel_kind !== 'direct' ||
        (event.type !== 'personal_message' && event.type !== 'chat_message')
      )
        return;
      const { sender_id: senderId, recipient_id: recipientId } = event as {
        sender_id?: unknown;
        recipient_id?: unknown;
      };
      if (typeof senderId !== 'string' || typeof recipientId !== 'string') return;
      assessLater(userOf(senderId, null), behaviour.directMessage(senderId, recipientId, Date.now()), {
        request_id: typeof event.id === 'string' ? `message:${event.id}` : undefined,
      });
    });

    // ---- frames ----
    const frameRef = (recipient: Recipient, frame?: number, type?: string): EventRef => ({
      connection_id: recipient.id,
      ...(frame !== undefined ? { frame } : {}),
      ...(type ? { frame_type: type.slice(0, 40) } : {}),
    });
    hub.useFrameInspector(
      (frame, recipient, frameNumber) => {
        const userId = recipient.principal.id;
        if (engine.banOf(userPrincipal(userId))) {
          recipient.close(CLOSE.BLOCKED, 'blocked');
          return false;
        }
        const fired = inspectFrame(frame);
        if (fired.length > 0)
          assessLater(userOf(userId, null), fired, frameRef(recipient, frameNumber, frame.type));
        return true;
      },
      (fault, recipient) => {
        const userId = recipient.principal.id;
        const now = Date.now();
        const fired: FiredRule[] =
          fault === 'oversized'
            ? [{ id: 'protocol.oversized_frame' }]
            : fault === 'rate_limited'
              ? [{ id: 'flood.rate_limited' }]
              : behaviour.badFrame(userPrincipal(userId), now);
        assessLater(userOf(userId, null), fired, frameRef(recipient));
      },
    );

    const detection: Detection = {
      engine,
      socketBan: (userId, ip) => engine.banOf(userId ? userPrincipal(userId) : ipPrincipal(ip)),
      socketOpened: (request, userId) => {
        const subject = userId ? userOf(userId, request.ip) : addressOf(request.ip);
        // An upgrade has no response for onResponse to score: what its URL and headers fired goes here.
        const fired = [
          ...(request.detectionPending ?? []),
          ...behaviour.socketOpened(subject.principal, Date.now()),
        ];
        request.detectionPending = undefined;
        assessLater(subject, fired, requestRef(request));
      },
      inspectValue: async (request, value, where) => {
        const fired = inspectField(value, where);
        if (fired.length === 0) return;
        const userId = (request.principal as { id?: string } | null)?.id;
        const decision = await assess(
          userId ? userOf(userId, request.ip) : addressOf(request.ip),
          fired,
          requestRef(request),
        );
        if (decision.ban) throw blocked(engine, decision.ban);
      },
      settled: async () => {
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        await service.flush();
      },
    };
    fastify.decorate('detection', detection);
    fastify.decorate('security', service);

    const flushTimer = setInterval(() => void service.flush(), 500);
    flushTimer.unref();
    const retentionMs = settings.events_retention_days * 86_400_000;
    const sweep = setInterval(() => {
      if (!fastify.database.isReady) return;
      service
        .removeOldEvents(new Date(Date.now() - retentionMs))
        .catch((error: unknown) =>
          fastify.log.warn({ err: error }, 'detection: old security events not removed'),
        );
    }, 60 * 60_000);
    sweep.unref();
    fastify.addHook('onClose', async () => {
      clearInterval(flushTimer);
      clearInterval(sweep);
      stopWatchingMessages();
      await detection.settled();
      await store.close();
    });
  },
  {
    name: 'detection',
    dependencies: ['config', 'database', 'services', 'realtime'],
  },
);

/** The `security_alert` frame admins get: enough to act on, nothing of any message's content. */
function alertFrame(event: SecurityEventRecord) {
  return {
    type: 'security_alert',
    id: event._id,
    at: event.at.toISOString(),
    action: event.action,
    principal: event.principal,
    user_id: event.user_id,
    ip: event.ip,
    score: event.score,
    rules: event.rules.map((rule) => rule.id),
    ...(event.request_id ? { request_id: event.request_id } : {}),
    ...(event.connection_id ? { connection_id: event.connection_id } : {}),
    ...(event.ban_until ? { ban_until: event.ban_until.toISOString() } : {}),
  };
}
