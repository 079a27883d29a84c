// Redis restarts under two instances of one deployment: a private redis-server (never the machine's shared
// one: this test kills it), instances A and B on one database, users on both in one group channel. While
// Redis is down each instance keeps delivering to its own sockets, both report degraded health and log a
// warning, and nothing crashes; once Redis is back both report ok again by themselves, every socket is told
// to reconnect (1012), and a `resume` with the last seen position brings each client exactly the channel's
// history: every message sent during the gap, none twice, nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.js';
import { uniqueDatabaseName } from '../helper.js';
import type { Frame } from '../realtime/client.js';
import {
  PrivateRedis,
  api,
  connectTo,
  health,
  loginAdmin,
  newGroup,
  newPerson,
  ok,
  pause,
  startSwitchboard,
  stopEverything,
  type Health,
  type Person,
  type ServerProcess,
  type TestSocket,
} from './harness.js';
import { recordSection } from './report.js';

/** A frame that must come is waited for this long (two processes and a Redis hop on a busy machine). */
const FRAME_WAIT_MS = 15_000;
/** Redis stays down at least this long, so the gap is a real one and not a blip. */
const MIN_GAP_MS = 3000;
/** Messages sent on A during the gap (half over the socket, half over REST) and on B. */
const GAP_MESSAGES_ON_A = 20;
const GAP_MESSAGES_ON_B = 3;
/**
 * Once Redis answers again: ioredis retries every 2 s at most and health is refreshed every 0.2 s, so a
 * few seconds is normal; this is the generous bound for a loaded machine.
 */
const RECOVERY_BOUND_MS = 30_000;

interface Message {
  id: string;
  channel_id: string;
  seq: number;
  change_seq: number;
  content: string;
}

interface Client {
  name: string;
  person: Person;
  server: ServerProcess;
  /** Every socket this client had, oldest first (the one open now is the last). */
  sockets: TestSocket[];
}

let redis: PrivateRedis;
let a: ServerProcess;
let b: ServerProcess;
let admin: Person;

const socketOf = (client: Client) => client.sockets.at(-1)!;

/** The channel's messages a socket was given: live events, acks of its own sends, and sync answers. */
function messagesIn(socket: TestSocket, channelId: string): Message[] {
  return socket.frames.flatMap((frame: Frame) => {
    if (frame.type === 'chat_message' && frame.channel_id === channelId) return [frame as unknown as Message];
    if (frame.type === 'ack' && (frame.message as Message | undefined)?.channel_id === channelId)
      return [frame.message as Message];
    if (frame.type === 'sync' && frame.channel_id === channelId) return frame.messages as Message[];
    return [];
  });
}

const idsSeenBy = (client: Client, channelId: string) =>
  new Set(client.sockets.flatMap((socket) => messagesIn(socket, channelId).map((message) => message.id)));

/**
 * The position to resume from, as a careful client keeps it: the highest change_seq among the messages it
 * holds without a hole in `seq` (gap-free by contract) from the first one it holds. Not simply the highest it was
 * given: a client that sent a message during the gap holds that message's ack, whose seq is past every
 * message it missed; resuming from there would skip them.
 */
function lastSeenBy(client: Client, channelId: string): number {
  const bySeq = new Map<number, Message>();
  for (const socket of client.sockets)
    for (const message of messagesIn(socket, channelId)) bySeq.set(message.seq, message);
  let position = 0;
  for (let seq = Math.min(...bySeq.keys()); bySeq.has(seq); seq += 1)
    position = Math.max(position, bySeq.get(seq)!.change_seq);
  return position;
}

/** The highest change_seq a client was given at all (what a naive client would resume from). */
const highestSeenBy = (client: Client, channelId: string) =>
  Math.max(
    0,
    ...client.sockets.flatMap((socket) => messagesIn(socket, channelId).map((message) => message.change_seq)),
  );

const liveEvent = (socket: TestSocket, messageId: string) =>
  socket.waitForType('chat_message', (frame) => frame.id === messageId, FRAME_WAIT_MS);

const hasLive = (socket: TestSocket, messageId: string) =>
  socket.frames.some((frame) => frame.type === 'chat_message' && frame.id === messageId);

/** Polls health every 50 ms until `accept`; resolves with the time it took (fails with the last answer). */
async function healthUntil(
  server: ServerProcess,
  accept: (answer: { statusCode: number; body: Health }) => boolean,
  timeoutMs: number,
): Promise<number> {
  const started = performance.now();
  let last = 'no answer yet';
  while (performance.now() - started < timeoutMs) {
    expect(server.child.exitCode, `${server.name} exited:\n${server.output()}`).toBeNull();
    try {
      const answer = await health(server);
      if (accept(answer)) return performance.now() - started;
      last = `${answer.statusCode} ${JSON.stringify(answer.body)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await pause(50);
  }
  throw new Error(`${server.name}: health not as expected within ${timeoutMs} ms (last: ${last})`);
}

const redisDown = ({ statusCode, body }: { statusCode: number; body: Health }) =>
  statusCode === 200 && body.status === 'degraded' && body.checks?.realtime.redis === 'down';
const redisUp = ({ statusCode, body }: { statusCode: number; body: Health }) =>
  statusCode === 200 && body.status === 'ok' && body.checks?.realtime.redis === 'up';

/** Lines of the server's current JSON log at `level` and above that contain `text` (read through the admin API). */
async function logLines(server: ServerProcess, level: string, text?: string): Promise<string[]> {
  const query = new URLSearchParams({ level, tail: '1000', ...(text ? { q: text } : {}) });
  const body = await ok<{ lines: string[] }>(api(server, admin, 'GET', `/admin/logs/main.json?${query}`));
  return body.lines;
}

/** Sends a channel message over the client's socket and returns the stored message from the ack. */
async function sendOverSocket(client: Client, channelId: string, content: string): Promise<Message> {
  const answer = await socketOf(client).request(
    { type: 'chat_message', channel_id: channelId, content },
    FRAME_WAIT_MS,
  );
  expect(answer, JSON.stringify(answer)).toMatchObject({ type: 'ack' });
  return answer.message as Message;
}

const sendOverRest = (client: Client, channelId: string, content: string) =>
  ok<Message>(
    api(client.server, client.person, 'POST', '/messages', { channel_id: channelId, content }),
    201,
  );

/** Opens a new socket for the client and resumes the channel from its last seen position until complete. */
async function reconnectAndResume(client: Client, channelId: string): Promise<Message[]> {
  let since = lastSeenBy(client, channelId);
  const socket = await connectTo(client.server, client.person, FRAME_WAIT_MS);
  client.sockets.push(socket);
  const recovered: Message[] = [];
  for (let page = 0; page < 50; page += 1) {
    const before = socket.ofType('sync').length;
    const answer = await socket.request({ type: 'resume', channels: { [channelId]: since } }, FRAME_WAIT_MS);
    expect(answer, JSON.stringify(answer)).toMatchObject({ type: 'ack', channels: 1 });
    const sync = socket
      .ofType('sync')
      .slice(before)
      .find((frame) => frame.channel_id === channelId);
    expect(sync, `${client.name}: no sync for the channel`).toBeDefined();
    recovered.push(...(sync!.messages as Message[]));
    since = sync!.last_seq as number;
    if (sync!.complete === true) return recovered;
  }
  throw new Error(`${client.name}: resume never said complete`);
}

beforeAll(async () => {
  redis = new PrivateRedis(await freePort());
  await redis.start();
  const databaseName = uniqueDatabaseName();
  const env = { REDIS_URL: redis.url };
  // One after the other, as a rolling start would: the first creates the admin and the indexes.
  a = await startSwitchboard('redis-a', { databaseName, env });
  b = await startSwitchboard('redis-b', { databaseName, env });
  for (const server of [a, b]) await healthUntil(server, redisUp, 30_000);
  admin = await loginAdmin(a);
}, 240_000);

afterAll(async () => {
  await stopEverything();
}, 60_000);

describe('a Redis restart under two instances', () => {
  it('degrades to local delivery, recovers by itself, and resume brings back every message of the gap', async () => {
    const people = await Promise.all([
      newPerson(a, admin),
      newPerson(a, admin),
      newPerson(b, admin),
      newPerson(b, admin),
      newPerson(b, admin),
    ]);
    const [a1, a2, b1, b2, b3] = people.map((person, index): Client => ({
      name: ['a1', 'a2', 'b1', 'b2', 'b3'][index]!,
      person,
      server: index < 2 ? a : b,
      sockets: [],
    })) as [Client, Client, Client, Client, Client];
    const onA = [a1, a2];
    const onB = [b1, b2, b3];
    const everyone = [...onA, ...onB];
    const channelId = await newGroup(a, a1.person, people.slice(1));
    for (const client of everyone) client.sockets.push(await connectTo(client.server, client.person));

    // Before the outage: across instances both ways.
    const first = await sendOverRest(a2, channelId, 'before the outage, from A');
    for (const client of everyone) await liveEvent(socketOf(client), first.id);
    const second = await sendOverSocket(b1, channelId, 'before the outage, from B');
    for (const client of [...onA, b2, b3]) await liveEvent(socketOf(client), second.id);

    // ---- Redis goes away ----
    const stoppedAt = performance.now();
    await redis.stop();
    const detection = await Promise.all(
      [a, b].map((server) => healthUntil(server, redisDown, FRAME_WAIT_MS)),
    );
    const detectionMs = Math.max(...detection);

    // A keeps delivering to its own sockets, over the socket and over REST.
    const sentOnA: Message[] = [];
    for (let i = 0; i < GAP_MESSAGES_ON_A; i += 1) {
      if (i % 2 === 0) {
        const message = await sendOverSocket(a1, channelId, `gap ${i}: A over the socket`);
        await liveEvent(socketOf(a2), message.id);
        sentOnA.push(message);
      } else {
        const message = await sendOverRest(a2, channelId, `gap ${i}: A over REST`);
        for (const client of onA) await liveEvent(socketOf(client), message.id);
        sentOnA.push(message);
      }
      await pause(50);
    }
    // B keeps delivering to its own sockets too.
    const sentOnB: Message[] = [];
    for (let i = 0; i < GAP_MESSAGES_ON_B; i += 1) {
      const message = await sendOverSocket(b1, channelId, `gap ${i}: B over the socket`);
      for (const client of [b2, b3]) await liveEvent(socketOf(client), message.id);
      sentOnB.push(message);
    }
    const sentDuringGap = [...sentOnA, ...sentOnB];

    // Both say why they are degraded (health), and log it once as a warning.
    const warnings: Record<string, number> = {};
    for (const server of [a, b]) {
      let lines: string[] = [];
      for (let attempt = 0; attempt < 50 && lines.length === 0; attempt += 1) {
        lines = await logLines(server, 'warn', 'redis connection lost');
        if (lines.length === 0) await pause(200);
      }
      expect(lines.length, `${server.name} logged no warning about Redis`).toBeGreaterThan(0);
      warnings[server.name] = lines.length;
      const answer = await health(server);
      expect(answer.statusCode).toBe(200);
      expect(answer.body).toMatchObject({ status: 'degraded', checks: { realtime: { redis: 'down' } } });
      expect(answer.body.checks?.database.status).toBe('up');
    }

    // The gap lasts at least MIN_GAP_MS; whatever of A's messages B's sockets got live is counted (nothing
    // carries them while Redis is down, but the contract only promises them through resume).
    const elapsed = performance.now() - stoppedAt;
    if (elapsed < MIN_GAP_MS) await pause(MIN_GAP_MS - elapsed);
    const liveAcrossGap = onB.reduce(
      (sum, client) => sum + sentOnA.filter((message) => hasLive(socketOf(client), message.id)).length,
      0,
    );
    for (const server of [a, b])
      expect(server.child.exitCode, `${server.name} exited:\n${server.output()}`).toBeNull();

    // ---- Redis comes back (empty: no persistence) ----
    await redis.start();
    const gapMs = performance.now() - stoppedAt;
    const recovery = await Promise.all(
      [a, b].map((server) => healthUntil(server, redisUp, RECOVERY_BOUND_MS)),
    );
    const recoveryMs = Math.max(...recovery);
    const backLogged: Record<string, number> = {};
    for (const server of [a, b])
      backLogged[server.name] = (await logLines(server, 'info', 'redis connection back')).length;

    // Every socket, on both instances, is told to reconnect and resume.
    const closes = await Promise.all(
      everyone.map((client) =>
        Promise.race([socketOf(client).closed, pause(RECOVERY_BOUND_MS).then(() => 'still open')]),
      ),
    );
    expect(closes).toEqual(everyone.map(() => 1012));

    // Each client reconnects to its own instance and resumes from what it last saw without a hole.
    const heldBefore = new Map(everyone.map((client) => [client, idsSeenBy(client, channelId)]));
    const highestBefore = new Map(everyone.map((client) => [client, highestSeenBy(client, channelId)]));
    const recovered = new Map<Client, Message[]>();
    for (const client of everyone) recovered.set(client, await reconnectAndResume(client, channelId));

    // The server's history of the channel (one page holds it all).
    const history = await ok<{ messages: Message[]; has_more: boolean }>(
      api(a, a1.person, 'GET', `/channels/${channelId}/messages?limit=200`),
    );
    expect(history.has_more).toBe(false);
    const historyIds = new Set(history.messages.map((message) => message.id));
    expect(historyIds.size).toBe(2 + sentDuringGap.length);
    for (const message of sentDuringGap) expect(historyIds.has(message.id)).toBe(true);

    // What resuming from the highest change_seq held (rather than the last one without a hole) would skip.
    let naiveWouldSkip = 0;
    for (const client of everyone)
      naiveWouldSkip += history.messages.filter(
        (message) =>
          !heldBefore.get(client)!.has(message.id) && message.change_seq <= highestBefore.get(client)!,
      ).length;

    // Every client, on either instance, ends with exactly the server's history: nothing missing, nothing extra.
    let missing = 0;
    let extra = 0;
    for (const client of everyone) {
      const seen = idsSeenBy(client, channelId);
      const lacking = [...historyIds].filter((id) => !seen.has(id));
      const unknown = [...seen].filter((id) => !historyIds.has(id));
      missing += lacking.length;
      extra += unknown.length;
      expect({ client: client.name, lacking, unknown }).toEqual({
        client: client.name,
        lacking: [],
        unknown: [],
      });
    }
    // What B's clients got back through resume: every message A sent in the gap (B's own live).
    const gapIdsOnA = new Set(sentOnA.map((message) => message.id));
    const recoveredByResumeOnB = onB.map(
      (client) => recovered.get(client)!.filter((message) => gapIdsOnA.has(message.id)).length,
    );
    for (const count of recoveredByResumeOnB) expect(count).toBe(GAP_MESSAGES_ON_A);
    // ...and A's clients got B's gap messages the same way.
    const gapIdsOnB = new Set(sentOnB.map((message) => message.id));
    for (const client of onA)
      expect(recovered.get(client)!.filter((message) => gapIdsOnB.has(message.id)).length).toBe(
        GAP_MESSAGES_ON_B,
      );

    // Across instances live again, both ways.
    const after = await sendOverRest(a2, channelId, 'Redis is back, from A');
    for (const client of onB) await liveEvent(socketOf(client), after.id);
    const reply = await sendOverSocket(b2, channelId, 'so I hear, from B');
    for (const client of onA) await liveEvent(socketOf(client), reply.id);

    // Nothing crashed, and nothing was logged as an error on either instance.
    const errorsLogged: Record<string, number> = {};
    for (const server of [a, b]) {
      expect(server.child.exitCode, `${server.name} exited:\n${server.output()}`).toBeNull();
      errorsLogged[server.name] = (await logLines(server, 'error')).length;
    }
    expect(errorsLogged).toEqual({ [a.name]: 0, [b.name]: 0 });

    const recoveredTotal = recoveredByResumeOnB.reduce((sum, count) => sum + count, 0);
    recordSection('redis', {
      summary:
        `Two instances on one database and a private Redis, ${onA.length} users on A and ${onB.length} on B ` +
        `in one group channel; Redis killed for ${(gapMs / 1000).toFixed(1)} s while ${sentDuringGap.length} ` +
        `messages were sent (${sentOnA.length} on A, ${sentOnB.length} on B), then started again empty.`,
      figures: {
        gap_ms: Math.round(gapMs),
        detection_ms: Math.round(detectionMs),
        recovery_ms: Math.round(recoveryMs),
        sent_during_gap: sentDuringGap.length,
        sent_during_gap_on_a: sentOnA.length,
        sent_during_gap_on_b: sentOnB.length,
        delivered_live_across_gap: liveAcrossGap,
        recovered_by_resume: recoveredTotal,
        missing,
        extra,
        naive_resume_would_skip: naiveWouldSkip,
        reconnect_closes_1012: closes.filter((code) => code === 1012).length,
        errors_logged: errorsLogged[a.name]! + errorsLogged[b.name]!,
      },
      checks: [
        `Both instances reported degraded health with checks.realtime.redis "down" within ${Math.round(detectionMs)} ms of the kill, still answering 200 with the database up.`,
        `Each instance logged the warning "redis connection lost: serving local users only" (A: ${warnings[a.name]}, B: ${warnings[b.name]} line(s)) and neither process exited.`,
        `During the gap every message reached the sockets on its own instance live (${sentOnA.length} on A over the socket and REST, ${sentOnB.length} on B); ${liveAcrossGap} of A's reached B's sockets live.`,
        `Once Redis answered again, both instances reported ok with Redis "up" within ${Math.round(recoveryMs)} ms without any action (logged "redis connection back": A ${backLogged[a.name]}, B ${backLogged[b.name]}).`,
        `All ${everyone.length} sockets on both instances were closed with 1012; each client reconnected and resumed from its last seen position.`,
        `Each of B's ${onB.length} clients got all ${GAP_MESSAGES_ON_A} of A's gap messages back through resume (${recoveredTotal} in all), A's clients got B's ${GAP_MESSAGES_ON_B}, and every client's set of message ids equals the channel's history exactly (missing ${missing}, extra ${extra}).`,
        `Clients resume from the change_seq of the last message they hold without a hole in seq: a client that sent during the gap holds acks past what it missed, and resuming from the highest change_seq it holds would have skipped ${naiveWouldSkip} message(s) in all.`,
        'Cross-instance delivery worked again both ways after the restart; no error was logged by either instance.',
      ],
    });
    expect(missing).toBe(0);
  }, 180_000);
});
