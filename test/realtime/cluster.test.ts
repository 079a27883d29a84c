// Two server processes on one database and a private Redis: each delivers to the other's users (group
// messages, direct messages, membership changes, presence, revoked sessions, tickets), and they keep
// serving their own users while Redis is down and join up again when it comes back.
import { MongoClient } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/db/embedded.js';
import type { Person } from '../conversations/fixtures.js';
import { TEST_SECRET, uniqueDatabaseName } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  strongPassword,
  unique,
  uniqueEmail,
} from '../identity/fixtures.js';
import { rawSocket, wsUrl, type Frame, type TestSocket } from './client.js';
import {
  PrivateRedis,
  health,
  startServer,
  stopAll,
  waitForHealth,
  type Health,
  type ServerProcess,
} from './processes.js';

/** A frame that should come is waited for this long: two processes and a Redis hop on a busy machine. */
const FRAME_WAIT_MS = 10_000;
const PRESENCE_GRACE_MS = 300;
/** The contract closes a revoked session within 1 s; this leaves room for a slow machine. */
const REVOKED_CLOSE_BOUND_MS = 6_000;
/**
 * How long a status that must not change is watched: many times the grace period, so a wrong "offline"
 * would have arrived (a slow machine can only make this pass wrongly, never fail wrongly).
 */
const QUIET_MS = 10 * PRESENCE_GRACE_MS;

let redis: PrivateRedis;
let a: ServerProcess;
let b: ServerProcess;
let admin: Person;
const databaseName = uniqueDatabaseName();
const sockets: TestSocket[] = [];

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const healthy = ({ statusCode, body }: { statusCode: number; body: Health }) =>
  statusCode === 200 && body.status === 'ok' && body.checks?.realtime.redis === 'up';

beforeAll(async () => {
  redis = new PrivateRedis(await freePort());
  await redis.start();
  const env = {
    MONGO_URL: inject('mongoUrl'),
    DB_NAME: databaseName,
    SECRET_KEY: TEST_SECRET,
    DEBUG: 'false',
    REDIS_URL: redis.url,
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    RATE_LIMITING_ENABLED: 'false',
    MESSAGES_PER_MINUTE: '100000',
    MAX_LOGIN_ATTEMPTS: '50',
    IP_MAX_LOGIN_FAILURES: '1000',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    WS_PRESENCE_GRACE_MS: String(PRESENCE_GRACE_MS),
    HEALTH_CHECK_INTERVAL: '0.2',
    LOG_CONSOLE: 'off',
  };
  // One after the other, as a rolling start would: the first creates the admin and the indexes.
  a = startServer('instance-a', await freePort(), env);
  await waitForHealth(a, healthy, 90_000);
  b = startServer('instance-b', await freePort(), env);
  await waitForHealth(b, healthy, 90_000);
  admin = await login(a, ADMIN_EMAIL, ADMIN_PASSWORD);
}, 200_000);

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.socket.terminate();
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.socket.terminate();
  await stopAll();
  const client = new MongoClient(inject('mongoUrl'));
  try {
    await client.db(databaseName).dropDatabase();
  } finally {
    await client.close();
  }
}, 60_000);

// ---- the API of one instance, over HTTP ----

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

async function api<T = Record<string, unknown>>(
  server: ServerProcess,
  who: Person | undefined,
  method: string,
  url: string,
  payload?: unknown,
): Promise<Answer<T>> {
  const response = await fetch(`http://127.0.0.1:${server.port}/api/v2${url}`, {
    method,
    headers: {
      ...(who ? bearer(who.token) : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(payload !== undefined ? { body: JSON.stringify(payload) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

async function ok<T = Record<string, unknown>>(answer: Promise<Answer<T>>, status = 200): Promise<T> {
  const resolved = await answer;
  expect(resolved.status, JSON.stringify(resolved.body)).toBe(status);
  return resolved.body;
}

async function login(server: ServerProcess, email: string, password: string): Promise<Person> {
  const body = await ok<{ access_token: string; user: { id: string; name: string } }>(
    api(server, undefined, 'POST', '/auth/login', { email, password }),
  );
  return {
    id: body.user.id,
    email,
    name: body.user.name,
    token: body.access_token,
    headers: bearer(body.access_token),
  };
}

/** A new member created by the admin on instance A, signed in on `server`. */
async function newPerson(server: ServerProcess = a): Promise<Person> {
  const email = uniqueEmail('cluster');
  const password = strongPassword();
  await ok(
    api(a, admin, 'POST', '/admin/users', {
      email,
      name: `Person ${unique('n')}`,
      department: 'Engineering',
      password,
    }),
    201,
  );
  return login(server, email, password);
}

async function newGroup(server: ServerProcess, owner: Person, members: Person[]): Promise<string> {
  const channel = await ok<{ id: string }>(
    api(server, owner, 'POST', '/channels', {
      kind: 'group',
      name: unique('cluster-group'),
      members: members.map((member) => member.id),
    }),
    201,
  );
  return channel.id;
}

interface Message {
  id: string;
  channel_id: string;
  sender_id: string;
  recipient_id: string | null;
  content: string;
  change_seq: number;
}

function sendRest(server: ServerProcess, sender: Person, body: Record<string, unknown>): Promise<Message> {
  return ok<Message>(api(server, sender, 'POST', '/messages', body), 201);
}

// ---- sockets ----

async function connectTo(server: ServerProcess, who: Person): Promise<TestSocket> {
  const socket = rawSocket(wsUrl(server.port, who.id), who.headers);
  sockets.push(socket);
  await socket.waitForType('hello', () => true, FRAME_WAIT_MS);
  return socket;
}

/** Sends a frame over the socket and returns the ack (fails on an error answer). */
async function request(socket: TestSocket, frame: Record<string, unknown>): Promise<Frame> {
  const answer = await socket.request(frame, FRAME_WAIT_MS);
  expect(answer, JSON.stringify(answer)).toMatchObject({ type: 'ack' });
  return answer;
}

function messageEvent(socket: TestSocket, type: string, messageId: string): Promise<Frame> {
  return socket.waitForType(type, (frame) => frame.id === messageId, FRAME_WAIT_MS);
}

function hasMessage(socket: TestSocket, messageId: string): boolean {
  return socket.frames.some(
    (frame) => (frame.type === 'chat_message' || frame.type === 'personal_message') && frame.id === messageId,
  );
}

type Status = { user_id: string; status: string; last_seen_at: string | null };

/** The status changes a socket was told, in order (single and batched frames alike). */
function statusChanges(socket: TestSocket, userId: string): Status[] {
  return socket.frames
    .flatMap((frame) =>
      frame.type === 'status_update'
        ? [frame as unknown as Status]
        : frame.type === 'status_updates'
          ? (frame.statuses as Status[])
          : [],
    )
    .filter((change) => change.user_id === userId);
}

function statusSeen(socket: TestSocket, userId: string, status: string): Promise<Frame> {
  return socket.waitFor(
    (frame) =>
      (frame.type === 'status_update' && frame.user_id === userId && frame.status === status) ||
      (frame.type === 'status_updates' &&
        (frame.statuses as Status[]).some((change) => change.user_id === userId && change.status === status)),
    FRAME_WAIT_MS,
    `${userId} ${status}`,
  );
}

async function allStatuses(socket: TestSocket): Promise<Status[]> {
  const before = socket.ofType('all_statuses').length;
  await request(socket, { type: 'get_all_statuses' });
  const answers = socket.ofType('all_statuses');
  expect(answers.length).toBe(before + 1);
  return answers.at(-1)!.statuses as Status[];
}

/**
 * A direct message to each of `outsiders`, sent after everything they must not see and awaited at each:
 * events reach one instance's sockets in the order they were published, so once the marker is there,
 * anything meant for them before it would be there too.
 */
async function markerReached(server: ServerProcess, sender: Person, outsiders: [Person, TestSocket][]) {
  for (const [outsider, socket] of outsiders) {
    const marker = await sendRest(server, sender, { recipient_id: outsider.id, content: 'marker' });
    await messageEvent(socket, 'personal_message', marker.id);
  }
}

describe('two instances sharing a database and a Redis', () => {
  it('deliver a group message sent on either one to the members on the other, and to no one else', async () => {
    const [x, y, outsiderA, outsiderB] = await Promise.all([
      newPerson(a),
      newPerson(b),
      newPerson(a),
      newPerson(b),
    ]);
    const channelId = await newGroup(a, x, [y]);
    const xs = await connectTo(a, x);
    const ys = await connectTo(b, y);
    const outsiderAs = await connectTo(a, outsiderA);
    const outsiderBs = await connectTo(b, outsiderB);

    // Sent over REST on A: Y's socket on B gets it, and so does X's own socket (it did not send it).
    const fromA = await sendRest(a, x, { channel_id: channelId, content: 'hello from A' });
    const atB = await messageEvent(ys, 'chat_message', fromA.id);
    expect(atB).toMatchObject({ channel_id: channelId, sender_id: x.id, content: 'hello from A' });
    await messageEvent(xs, 'chat_message', fromA.id);

    // Sent over the socket on B: X's socket on A gets it; the sending socket gets only the ack.
    const ack = await request(ys, { type: 'chat_message', channel_id: channelId, content: 'hello from B' });
    const fromB = ack.message as Message;
    expect(ack.created).toBe(true);
    const atA = await messageEvent(xs, 'chat_message', fromB.id);
    expect(atA).toMatchObject({ channel_id: channelId, sender_id: y.id, content: 'hello from B' });
    expect(hasMessage(ys, fromB.id)).toBe(false);

    // Both instances' outsiders saw neither.
    await markerReached(a, x, [
      [outsiderA, outsiderAs],
      [outsiderB, outsiderBs],
    ]);
    for (const socket of [outsiderAs, outsiderBs]) {
      expect(hasMessage(socket, fromA.id)).toBe(false);
      expect(hasMessage(socket, fromB.id)).toBe(false);
      expect(socket.frames.some((frame) => frame.channel_id === channelId)).toBe(false);
    }
  }, 60_000);

  it('deliver a direct message across instances both ways, and to no third user', async () => {
    const [x, y, outsider] = await Promise.all([newPerson(a), newPerson(b), newPerson(b)]);
    const xs = await connectTo(a, x);
    const ys = await connectTo(b, y);
    const outsiderS = await connectTo(b, outsider);

    const fromA = await sendRest(a, x, { recipient_id: y.id, content: 'psst from A' });
    expect(await messageEvent(ys, 'personal_message', fromA.id)).toMatchObject({
      sender_id: x.id,
      recipient_id: y.id,
      content: 'psst from A',
    });

    const ack = await request(ys, { type: 'personal_message', recipient_id: x.id, content: 'psst from B' });
    const fromB = ack.message as Message;
    expect(await messageEvent(xs, 'personal_message', fromB.id)).toMatchObject({
      sender_id: y.id,
      recipient_id: x.id,
      content: 'psst from B',
    });

    await markerReached(a, x, [[outsider, outsiderS]]);
    expect(hasMessage(outsiderS, fromA.id)).toBe(false);
    expect(hasMessage(outsiderS, fromB.id)).toBe(false);
  }, 60_000);

  it('tell the other instance about membership changes made while its users are connected', async () => {
    const [x, y, bystander] = await Promise.all([newPerson(a), newPerson(b), newPerson(b)]);
    const ys = await connectTo(b, y);
    const bystanderS = await connectTo(b, bystander);

    // Y is connected on B before the channel exists: B learns of the membership from A.
    const channelId = await newGroup(a, x, [bystander]);
    await ok(api(a, x, 'POST', `/channels/${channelId}/members`, { members: [y.id] }));
    const first = await sendRest(a, x, { channel_id: channelId, content: 'welcome' });
    await messageEvent(ys, 'chat_message', first.id);

    // Removed on A: B stops delivering the channel's messages to Y (the bystander, on B too, still gets them).
    await ok(api(a, x, 'DELETE', `/channels/${channelId}/members/${y.id}`), 204);
    const after = await sendRest(a, x, { channel_id: channelId, content: 'after you left' });
    await messageEvent(bystanderS, 'chat_message', after.id);
    await markerReached(a, x, [[y, ys]]);
    expect(hasMessage(ys, after.id)).toBe(false);
  }, 60_000);

  it('share presence: online, a chosen status and, after the grace period, offline', async () => {
    const [x, y] = await Promise.all([newPerson(a), newPerson(b)]);
    const xs = await connectTo(a, x);
    const ys = await connectTo(b, y);

    await statusSeen(xs, y.id, 'online');
    expect(await allStatuses(xs)).toContainEqual(
      expect.objectContaining({ user_id: y.id, status: 'online' }),
    );
    // And the other way round: B knows X, who connected on A.
    expect(await allStatuses(ys)).toContainEqual(
      expect.objectContaining({ user_id: x.id, status: 'online' }),
    );

    await request(ys, { type: 'set_status', status: 'busy' });
    await statusSeen(xs, y.id, 'busy');
    expect(await allStatuses(xs)).toContainEqual(expect.objectContaining({ user_id: y.id, status: 'busy' }));

    await ys.close();
    const offline = await statusSeen(xs, y.id, 'offline');
    const change =
      offline.type === 'status_update'
        ? (offline as unknown as Status)
        : (offline.statuses as Status[]).find((entry) => entry.user_id === y.id)!;
    expect(Number.isNaN(Date.parse(String(change.last_seen_at)))).toBe(false);
    expect((await allStatuses(xs)).map((entry) => entry.user_id)).not.toContain(y.id);
    // Offline was said once, after busy: no flicker back to online.
    expect(statusChanges(xs, y.id).map((entry) => entry.status)).toEqual(['online', 'busy', 'offline']);
  }, 60_000);

  it('close a socket on B with 4401 when its session is revoked on A, and leave other sockets open', async () => {
    const [x, y] = await Promise.all([newPerson(a), newPerson(b)]);
    const ys = await connectTo(b, y);
    const xs = await connectTo(b, x);

    await ok(api(a, y, 'POST', '/auth/logout'), 204);
    expect(await ys.closed).toBe(4401);
    expect(xs.closeCode).toBeUndefined();
    await request(xs, { type: 'ping' });
  }, 60_000);

  // B must not trust its cached answer for the session (up to a second old) once A has revoked it, nor keep
  // a socket that authenticated in that moment.
  it('open no lasting socket on either instance for a session revoked on A', async () => {
    const y = await newPerson(b);
    const ys = await connectTo(b, y);
    await ok(api(a, y, 'POST', '/auth/logout'), 204);
    expect(await ys.closed).toBe(4401);

    for (const server of [a, b]) {
      const again = rawSocket(wsUrl(server.port, y.id), y.headers);
      sockets.push(again);
      // Refused before hello, or closed within the contract's second (5 s of slack for a slow machine).
      const code = await Promise.race([again.closed, pause(REVOKED_CLOSE_BOUND_MS).then(() => 'still open')]);
      expect(code, `${server.name}: ${JSON.stringify(again.frames.map((f) => f.type))}`).toBe(4401);
    }
  }, 60_000);

  it('open a socket on B with a ticket issued by A, once', async () => {
    const y = await newPerson(a);
    const { ticket } = await ok<{ ticket: string }>(api(a, y, 'POST', '/ws/ticket'));

    const onB = rawSocket(wsUrl(b.port, y.id, `ticket=${encodeURIComponent(ticket)}`));
    sockets.push(onB);
    expect(await onB.waitForType('hello', () => true, FRAME_WAIT_MS)).toMatchObject({ user_id: y.id });

    for (const server of [a, b]) {
      const reused = rawSocket(wsUrl(server.port, y.id, `ticket=${encodeURIComponent(ticket)}`));
      sockets.push(reused);
      expect(await reused.closed).toBe(4401);
    }
  }, 60_000);

  it('keep serving their own users while Redis is down, and deliver to each other again once it is back', async () => {
    const [x, y, z, w] = await Promise.all([newPerson(a), newPerson(b), newPerson(a), newPerson(b)]);
    const channelId = await newGroup(a, x, [y, z, w]);
    const xs = await connectTo(a, x);
    const zs = await connectTo(a, z);
    const ys = await connectTo(b, y);
    const ws = await connectTo(b, w);
    const before = await sendRest(a, x, { channel_id: channelId, content: 'before the outage' });
    await messageEvent(ys, 'chat_message', before.id);

    await redis.stop();
    for (const server of [a, b]) {
      const degraded = await waitForHealth(
        server,
        ({ body }) => body.checks?.realtime.redis === 'down',
        FRAME_WAIT_MS,
      );
      expect(degraded.status).toBe('degraded');
      expect(degraded.checks?.database.status).toBe('up');
    }
    // Still answering 200 (degraded is not down: the load balancer keeps sending users).
    expect((await health(a)).statusCode).toBe(200);

    // Local delivery on A: over the socket and over REST.
    const localA = (await request(zs, { type: 'chat_message', channel_id: channelId, content: 'A only' }))
      .message as Message;
    await messageEvent(xs, 'chat_message', localA.id);
    const restA = await sendRest(a, x, { channel_id: channelId, content: 'A only, over REST' });
    await messageEvent(zs, 'chat_message', restA.id);
    // Local delivery on B.
    const localB = (await request(ws, { type: 'chat_message', channel_id: channelId, content: 'B only' }))
      .message as Message;
    await messageEvent(ys, 'chat_message', localB.id);
    // Sockets and tickets still open on the instance that issued them.
    const { ticket } = await ok<{ ticket: string }>(api(a, x, 'POST', '/ws/ticket'));
    const local = rawSocket(wsUrl(a.port, x.id, `ticket=${encodeURIComponent(ticket)}`));
    sockets.push(local);
    await local.waitForType('hello', () => true, FRAME_WAIT_MS);

    await redis.start();
    for (const server of [a, b]) await waitForHealth(server, healthy, 30_000);

    // Events the other instance published meanwhile never reached these sockets: every one is told to
    // reconnect and resume (1012), and the resume brings what was missed.
    for (const socket of [xs, zs, ys, ws, local]) expect(await socket.closed).toBe(1012);
    const xs2 = await connectTo(a, x);
    const ys2 = await connectTo(b, y);
    await request(xs2, { type: 'resume', channels: { [channelId]: before.change_seq } });
    const sync = xs2.ofType('sync').find((frame) => frame.channel_id === channelId)!;
    expect((sync.messages as Message[]).map((message) => message.id)).toEqual([
      localA.id,
      restA.id,
      localB.id,
    ]);
    expect(sync.complete).toBe(true);

    // Across instances again, both ways.
    const again = await sendRest(a, x, { channel_id: channelId, content: 'Redis is back' });
    await messageEvent(ys2, 'chat_message', again.id);
    const reply = (await request(ys2, { type: 'chat_message', channel_id: channelId, content: 'so I hear' }))
      .message as Message;
    await messageEvent(xs2, 'chat_message', reply.id);
    // And a ticket from A opens a socket on B again.
    const shared = await ok<{ ticket: string }>(api(a, y, 'POST', '/ws/ticket'));
    const onB = rawSocket(wsUrl(b.port, y.id, `ticket=${encodeURIComponent(shared.ticket)}`));
    sockets.push(onB);
    await onB.waitForType('hello', () => true, FRAME_WAIT_MS);
  }, 90_000);
});

/** Kills the private Redis, waits until both instances say so, starts it again (empty) and waits for both. */
async function restartRedis(whileDown: () => Promise<void> = async () => {}): Promise<void> {
  await redis.stop();
  for (const server of [a, b])
    await waitForHealth(server, ({ body }) => body.checks?.realtime.redis === 'down', FRAME_WAIT_MS);
  await whileDown();
  await redis.start();
  for (const server of [a, b]) await waitForHealth(server, healthy, 30_000);
}

describe('presence across a Redis restart', () => {
  // A restarted Redis remembers nothing: each instance must say again where its users stand and take the
  // others' view.
  it('is right again once Redis is back for users who left or arrived during the outage', async () => {
    const [x, leaver, arriver, watcher] = await Promise.all([
      newPerson(a),
      newPerson(b),
      newPerson(b),
      newPerson(b),
    ]);
    const xs = await connectTo(a, x);
    const leaverS = await connectTo(b, leaver);
    const watcherS = await connectTo(b, watcher);
    await statusSeen(xs, leaver.id, 'online');

    let arriverS: TestSocket | undefined;
    await restartRedis(async () => {
      await leaverS.close();
      // B has seen the leaver go (its own users are told at once).
      await statusSeen(watcherS, leaver.id, 'offline');
      arriverS = await connectTo(b, arriver);
      await statusSeen(watcherS, arriver.id, 'online');
    });

    // Everyone reconnects (1012), as clients do, and A's users learn both changes once the instances
    // hear each other again.
    expect(await xs.closed).toBe(1012);
    expect(await arriverS!.closed).toBe(1012);
    await connectTo(b, arriver);
    const xs2 = await connectTo(a, x);
    let atA: string[] = [];
    for (let attempt = 0; attempt < 50; attempt += 1) {
      atA = (await allStatuses(xs2)).map((entry) => entry.user_id);
      if (atA.includes(arriver.id) && !atA.includes(leaver.id)) break;
      await pause(100);
    }
    expect(atA).toContain(arriver.id);
    expect(atA).not.toContain(leaver.id);
  }, 90_000);

  // The record of which instance holds whom must be written again at once after a restart, or A would
  // decide Y is offline everywhere.
  it('keeps a user online who closes one tab on A while another stays open on B', async () => {
    const [x, y] = await Promise.all([newPerson(a), newPerson(a)]);
    const xs = await connectTo(a, x);
    const yOnA = await connectTo(a, y);
    const yOnB = await connectTo(b, y);
    await statusSeen(xs, y.id, 'online');

    await restartRedis();
    // Every socket reconnects after the outage (1012), within the presence grace: nobody flickers.
    for (const socket of [xs, yOnA, yOnB]) expect(await socket.closed).toBe(1012);
    const xs2 = await connectTo(a, x);
    const yOnA2 = await connectTo(a, y);
    const yOnB2 = await connectTo(b, y);

    await yOnA2.close();
    await pause(QUIET_MS);
    expect(statusChanges(xs2, y.id).filter((entry) => entry.status === 'offline')).toEqual([]);
    expect(await allStatuses(xs2)).toContainEqual(
      expect.objectContaining({ user_id: y.id, status: 'online' }),
    );
    // Closing the last tab, on B, does make Y offline at A.
    await yOnB2.close();
    await statusSeen(xs2, y.id, 'offline');
  }, 90_000);
});
