// The realtime hub as a shared dependency (fastify.realtime): the hub and its membership cache,
// presence, the frame handlers, tickets, long-poll subscriptions, and the link to other instances
// (Redis when REDIS_URL is set). It subscribes to what the services publish and tell.
import fp from 'fastify-plugin';
import { RedisCluster, SoloCluster, type Cluster } from '../../realtime/cluster.js';
import { CLOSE } from '../../realtime/connection.js';
import { ConnectionWork } from '../../realtime/connection-work.js';
import { FrameHandlers } from '../../realtime/handlers.js';
import { Hub } from '../../realtime/hub.js';
import { Polls } from '../../realtime/polls.js';
import { Presence } from '../../realtime/presence.js';
import { Tickets } from '../../realtime/tickets.js';

/** How often the sessions behind open connections are checked again (revoked elsewhere, expired). */
const SESSION_RECHECK_MS = 30_000;
/** Longest a shutdown waits to tell other instances that this one's users left. */
const LEAVING_WAIT_MS = 2000;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export interface Realtime {
  hub: Hub;
  /** The gate for the database work of sockets coming and going (realtime/connection-work.ts). */
  connectionWork: ConnectionWork;
  presence: Presence;
  handlers: FrameHandlers;
  tickets: Tickets;
  polls: Polls;
  cluster: Cluster;
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: Realtime;
  }
}

export default fp(
  async function realtimePlugin(fastify) {
    const { config } = fastify;
    // Read by the cluster's presence refresh, which first runs long after the hub exists.
    const localUsers = () => hub.connectedUserIds();
    const cluster: Cluster = config.redis.url
      ? new RedisCluster(config.redis.url, localUsers, fastify.log)
      : new SoloCluster();
    if (cluster instanceof RedisCluster) await cluster.start();
    fastify.log.info(
      { cluster: cluster.state(), instance: cluster.instanceId },
      config.redis.url
        ? 'realtime hub shares events through redis'
        : 'realtime hub runs alone (no REDIS_URL)',
    );

    // Measured by test/reliability/storm.test.ts (5,000 sockets reconnecting twice within 10 s, FerretDB on
    // 2 CPUs): with all of them in the driver's pool a send took seconds; with 5 at a time the probe's p99
    // was 105 ms, with 2 it was 47–50 ms, and the storm took no longer: the database is the bottleneck,
    // and more operations at once only lengthen its queue.
    const connectionWork = new ConnectionWork(
      config.ws.connection_work_concurrency,
      config.database.timeout_ms,
    );
    const hub: Hub = new Hub({
      config: config.ws,
      cluster,
      channelIdsOf: (userId) =>
        connectionWork.run(() => fastify.channels.memberChannelIds({ id: userId, roles: [] })),
      log: fastify.log,
    });
    const presence = new Presence({
      cluster,
      graceMs: config.ws.presence_grace_ms,
      flushMs: config.ws.status_flush_ms,
      chosenStatus: (userId) => connectionWork.run(() => fastify.users.chosenPresence(userId)),
      saveChosenStatus: (userId, status) => fastify.users.choosePresence(userId, status),
      saveLastSeen: (userId, at) => connectionWork.run(() => fastify.users.markSeen(userId, at)),
      localUsers: () => hub.connectedUserIds(),
      isLocal: (userId) => hub.isConnected(userId),
      broadcast: (frame) => hub.deliverLocal(frame, { kind: 'everyone' }),
      log: fastify.log,
    });
    hub.presence = presence;
    const handlers = new FrameHandlers({
      config: config.ws,
      hub,
      connectionWork,
      presence,
      messages: fastify.messages,
      channels: fastify.channels,
      users: fastify.users,
    });
    const tickets = new Tickets(cluster);
    const polls = new Polls(hub, config.ws.poll_buffer, config.ws.max_per_user);

    // What the services publish and tell reaches the hub.
    const unsubscribe = fastify.events.subscribe((event, audience) => hub.publish(event, audience));
    const onMembership = hub.membershipChanged.bind(hub);
    fastify.channels.events.on('membership.changed', onMembership);
    const onRevoked = ({ sessionId }: { sessionId: string }) => hub.closeSession(sessionId);
    fastify.auth.events.on('session.revoked', onRevoked);
    // A session revoked on another instance: this one must stop trusting its cached answer at once.
    cluster.onMessage((message) => {
      if (message.kind === 'session_revoked') fastify.auth.forgetSession(message.sessionId);
    });

    // Events other instances published while Redis was away never reached this instance's clients, and
    // membership changes may be missing from its cache: every client reconnects (1012) and resumes, which
    // reloads both. Presence grace keeps this from showing as people going offline.
    cluster.onReconnect(() => {
      hub.closeAll(CLOSE.SERVICE_RESTART, 'events may have been missed: reconnect and resume');
      polls.resetAll();
    });

    // A session can also end where this instance cannot hear it (expiry; another instance or the admin
    // tool without Redis): the sessions behind open connections are checked again every
    // SESSION_RECHECK_MS, a slice each second so 10,000 sockets never mean 10,000 checks at once. The
    // check counts as use of the session (an open socket keeps it from idling out), written rarely.
    let due: string[] = [];
    let perTick = 0;
    const recheck = setInterval(() => {
      if (due.length === 0) {
        due = [...hub.sessionIds()];
        perTick = Math.ceil(due.length / (SESSION_RECHECK_MS / 1000));
      }
      for (const sessionId of due.splice(0, perTick)) {
        connectionWork
          .run(() => fastify.auth.recheckSession(sessionId))
          .then(
            (principal) => {
              if (principal === null) hub.closeSession(sessionId, false);
            },
            () => undefined, // database away: keep the sockets, try again next round
          );
      }
    }, 1000);
    recheck.unref();

    fastify.decorate('realtime', { hub, connectionWork, presence, handlers, tickets, polls, cluster });

    // Before the HTTP server stops: other instances hear these users leave (bounded wait), then clients
    // hear 1001 and reconnect elsewhere.
    fastify.addHook('preClose', async () => {
      clearInterval(recheck);
      await Promise.race([presence.leaving().catch(() => undefined), delay(LEAVING_WAIT_MS)]);
      polls.close();
      hub.close();
    });
    fastify.addHook('onClose', async () => {
      unsubscribe();
      fastify.channels.events.off('membership.changed', onMembership);
      fastify.auth.events.off('session.revoked', onRevoked);
      await cluster.close();
    });
  },
  { name: 'realtime', dependencies: ['config', 'services', 'websocket'] },
);
