// Abusive clients against one real server while a few well-behaved clients keep chatting: garbage and
// oversized frames, sockets that never read a busy channel, half-open TCP connections and sockets that stop
// answering pings, slowloris headers and request bodies that never end. The server must stay up, keep its
// memory, deliver every message of the well-behaved clients, close every slow or silent connection within
// its configured timeouts, and record the abusers in its security events.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  connectTo,
  loginAdmin,
  memoryOf,
  newGroup,
  newPerson,
  ok,
  pause,
  percentile,
  startSwitchboard,
  stopEverything,
  type Person,
  type ServerProcess,
  type TestSocket,
} from './harness.js';
import { recordSection } from './report.js';
import { TestSocket as Socket, tcpOf, wsUrl, type Frame } from '../realtime/client.js';

const REQUEST_TIMEOUT_MS = 5000;
const HEARTBEAT_MS = 2000;
const MAX_FRAME = 64 * 1024;
const MAX_BUFFERED = 256 * 1024;
/**
 * When a slow HTTP connection (headers or body never finished) must be gone: REQUEST_TIMEOUT_MS, plus
 * slack for the timer that enforces it. (Node checks request timeouts on http.Server's
 * connectionsCheckingInterval, 30 s unless the server sets it, and a request whose headers have arrived is
 * held to headersTimeout, 60 s unless the server sets it: a server that leaves both alone closes such
 * connections far later than its configured timeout.)
 */
const HTTP_CLOSE_BOUND_MS = REQUEST_TIMEOUT_MS + 5000;
const SLOW_HTTP_KINDS = [
  'half_open_silent',
  'half_open_partial_upgrade',
  'slowloris',
  'body_short_content_length',
  'body_chunked_upload',
  'body_chunked_json',
];
/** A socket silent for two heartbeats is cut at the third. */
const HEARTBEAT_CLOSE_BOUND_MS = 3 * HEARTBEAT_MS + 3000;
/** We stop waiting (and close it ourselves, as a failure) after this: past Node's own 60 s + 30 s. */
const GIVE_UP_MS = 100_000;

const GOOD_CHATTERS = 4;
const GOOD_SEND_EVERY_MS = 200;
const BASELINE_MS = 5000;
/** Long messages on the busy channel fill a reader's buffers fast. */
const BUSY_CONTENT = 60_000;
const BUSY_BATCH = 6;
const BUSY_MAX_MESSAGES = 1500;

const MiB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

interface HealthBody {
  status: string;
  checks: {
    database: { status: string };
    realtime: { sockets: number; slow_consumer_closes: number; heartbeat_terminations: number };
  };
}

async function healthOf(server: ServerProcess): Promise<{ status: number; body: HealthBody }> {
  const response = await fetch(`http://127.0.0.1:${server.port}/api/v2/health`, {
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as HealthBody };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await pause(100);
  }
  return condition();
}

// ---- raw TCP abusers ----

/** A raw TCP connection we never close: when the server closed it, and the first line it answered. */
interface RawConnection {
  kind: string;
  socket: net.Socket;
  openedAt: number;
  closedAt: number | undefined;
  answer: string;
  closed: Promise<void>;
}

async function rawConnection(kind: string, port: number): Promise<RawConnection> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const connection: RawConnection = {
    kind,
    socket,
    openedAt: 0,
    closedAt: undefined,
    answer: '',
    closed: new Promise((resolve) =>
      socket.once('close', () => {
        connection.closedAt = Date.now();
        resolve();
      }),
    ),
  };
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    if (connection.answer.length < 4096) connection.answer += chunk.toString('latin1');
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  connection.openedAt = Date.now();
  return connection;
}

/** Writes `text` a byte a second (then `tail` forever, one a second) until the server closes. */
function trickle(connection: RawConnection, text: string, tail: () => string): void {
  let position = 0;
  const timer = setInterval(() => {
    if (connection.closedAt !== undefined || connection.socket.destroyed) return clearInterval(timer);
    connection.socket.write(position < text.length ? text[position++]! : tail());
  }, 1000);
  void connection.closed.then(() => clearInterval(timer));
}

const firstLine = (answer: string) => answer.split('\r\n', 1)[0] ?? '';

/** A WebSocket upgrade request (valid unless cut short). */
function upgradeRequest(port: number, userId: string, headers: Record<string, string>): string {
  return [
    `GET /api/v2/ws/${userId} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    '',
  ].join('\r\n');
}

// ---- the well-behaved chat ----

interface GoodChat {
  sent: number;
  /** The error frames answering good sends: "CODE: message". */
  errors: string[];
  /** client_id → when it was sent, and which members' sockets have it. */
  messages: Map<string, { at: number; phase: 'baseline' | 'abuse'; reached: Set<string> }>;
  latencies: { baseline: number[]; abuse: number[] };
  phase: 'baseline' | 'abuse';
  running: boolean;
}

function listenForChat(chat: GoodChat, channelId: string, reader: Person, socket: TestSocket): void {
  socket.socket.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    if (frame.type === 'ack' && typeof frame.ref === 'string' && chat.messages.has(frame.ref)) return;
    if (frame.type === 'error' && typeof frame.ref === 'string' && chat.messages.has(frame.ref)) {
      chat.errors.push(`${String(frame.code)}: ${String(frame.message)}`);
      return;
    }
    if (frame.type !== 'chat_message' || frame.channel_id !== channelId) return;
    const sent = chat.messages.get(String(frame.client_id));
    if (!sent || sent.reached.has(reader.id)) return;
    sent.reached.add(reader.id);
    chat.latencies[sent.phase].push(Date.now() - sent.at);
  });
}

async function chatLoop(chat: GoodChat, channelId: string, who: Person, socket: TestSocket): Promise<void> {
  let n = 0;
  while (chat.running) {
    const clientId = `good-${who.id}-${n++}`;
    chat.messages.set(clientId, { at: Date.now(), phase: chat.phase, reached: new Set() });
    socket.send({
      type: 'chat_message',
      id: clientId,
      client_id: clientId,
      channel_id: channelId,
      content: `hello ${n} from a well-behaved client`,
    });
    chat.sent += 1;
    await pause(GOOD_SEND_EVERY_MS);
  }
}

// ---- the test ----

describe('abusive clients', () => {
  let server: ServerProcess;
  const ownSockets: Socket[] = [];
  const rawConnections: RawConnection[] = [];

  beforeAll(async () => {
    server = await startSwitchboard('abuse', {
      env: {
        REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        WS_HEARTBEAT_MS: String(HEARTBEAT_MS),
        WS_MAX_FRAME: String(MAX_FRAME),
        WS_MAX_BUFFERED: String(MAX_BUFFERED),
        MESSAGE_MAX_LENGTH: String(BUSY_CONTENT + 1000),
      },
    });
  });

  afterAll(async () => {
    for (const connection of rawConnections) connection.socket.destroy();
    await Promise.all(ownSockets.map((socket) => socket.close()));
    await stopEverything();
  });

  it(
    'stays up, keeps its memory and serves the good clients while abusers are refused and cut off',
    { timeout: 175_000 },
    async () => {
      const admin = await loginAdmin(server);
      const people = (count: number) =>
        Promise.all(Array.from({ length: count }, () => newPerson(server, admin)));
      const [good, [busyReader, broadcaster], garbage, [badUtf8], oversized, neverReaders, noPong, bodies] =
        await Promise.all([
          people(GOOD_CHATTERS),
          people(2),
          people(3),
          people(1),
          people(2),
          people(3),
          people(4),
          people(3),
        ]);
      const chatChannel = await newGroup(server, good[0]!, good.slice(1));
      const busyChannel = await newGroup(server, broadcaster!, [busyReader!, ...neverReaders]);

      // Health answers 200 all along.
      const healthAnswers = { ok: 0, failed: [] as string[] };
      let watchingHealth = true;
      const healthWatch = (async () => {
        while (watchingHealth) {
          try {
            const { status, body } = await healthOf(server);
            if (status === 200) healthAnswers.ok += 1;
            else
              healthAnswers.failed.push(
                `status ${status}: ${body.status}, database ${body.checks.database.status}`,
              );
          } catch (error) {
            healthAnswers.failed.push((error as Error).message);
          }
          await pause(250);
        }
      })();

      // The well-behaved clients chat throughout; a baseline first, without abusers.
      const goodSockets = await Promise.all(good.map((who) => connectTo(server, who)));
      const chat: GoodChat = {
        sent: 0,
        errors: [],
        messages: new Map(),
        latencies: { baseline: [], abuse: [] },
        phase: 'baseline',
        running: true,
      };
      good.forEach((who, i) => listenForChat(chat, chatChannel, who, goodSockets[i]!));
      const chatting = Promise.all(good.map((who, i) => chatLoop(chat, chatChannel, who, goodSockets[i]!)));
      const busySocket = await connectTo(server, busyReader!);
      const busyReceived = new Set<string>();
      busySocket.socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as Frame;
        if (frame.type === 'chat_message' && frame.channel_id === busyChannel)
          busyReceived.add(String(frame.id));
      });
      await pause(BASELINE_MS);
      const before = await memoryOf(server);
      const healthBefore = (await healthOf(server)).body.checks.realtime;
      chat.phase = 'abuse';
      const abuseStartedAt = Date.now();

      const closes = new Map<number, number>();
      const countClose = (code: number) => closes.set(code, (closes.get(code) ?? 0) + 1);
      const timesToClose = new Map<string, number[]>();
      const notClosed: string[] = [];
      const answers = new Map<string, string[]>();
      const recordClose = (kind: string, ms: number | undefined, answer?: string) => {
        if (ms === undefined) notClosed.push(kind);
        else timesToClose.set(kind, [...(timesToClose.get(kind) ?? []), ms]);
        if (answer !== undefined) answers.set(kind, [...(answers.get(kind) ?? []), firstLine(answer)]);
      };

      /** A socket of ours (not the harness's), closed in afterAll if the server never closes it. */
      const openSocket = async (who: Person, options: WebSocket.ClientOptions = {}) => {
        const socket = new Socket(
          new WebSocket(wsUrl(server.port, who.id), { headers: who.headers, ...options }),
        );
        ownSockets.push(socket);
        await socket.waitForType('hello', () => true, 10_000);
        return socket;
      };
      const closeCodeOf = async (socket: Socket, timeoutMs = 15_000) => {
        const code = await Promise.race([socket.closed, pause(timeoutMs).then(() => undefined)]);
        if (code !== undefined) countClose(code);
        return code;
      };

      // Garbage: random bytes, invalid JSON, unknown types, binary frames, frames of the wrong shape.
      const garbageFrames = (i: number): [string | Buffer, boolean] => {
        switch (i % 7) {
          case 0:
            return [randomBytes(64), true];
          case 1:
            return [randomBytes(48).toString('base64'), false];
          case 2:
            return ['{"type":"chat_message","channel_id":', false];
          case 3:
            return [JSON.stringify({ type: 'launch_missiles', id: `g${i}` }), false];
          case 4:
            return [JSON.stringify([1, 2, 3]), false];
          case 5:
            return [JSON.stringify({ type: 'chat_message', id: `g${i}` }), false];
          default:
            return [JSON.stringify({ no_type: true }), false];
        }
      };
      const garbageAbuse = garbage.map(async (who) => {
        const socket = await openSocket(who);
        for (let i = 0; i < 40 && socket.closeCode === undefined; i += 1) {
          const [data, binary] = garbageFrames(i);
          socket.sendRaw(data, binary);
          await pause(50);
        }
        await pause(1000);
        const errors = socket.ofType('error').length;
        const code = socket.closeCode ?? (await socket.close(), undefined);
        if (code !== undefined) countClose(code);
        return { errors, code };
      });
      // A text frame that is not UTF-8: the protocol's own close (1007).
      const badUtf8Abuse = (async () => {
        const socket = await openSocket(badUtf8!);
        socket.sendRaw(Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]), false);
        return closeCodeOf(socket);
      })();
      // Oversized: twice each (a text and a binary frame), reconnecting in between.
      const oversizedAbuse = oversized.map(async (who) => {
        const codes: (number | undefined)[] = [];
        for (const binary of [false, true]) {
          const socket = await openSocket(who);
          const big = binary ? randomBytes(MAX_FRAME + 40_000) : 'x'.repeat(MAX_FRAME + 40_000);
          socket.sendRaw(big, binary);
          codes.push(await closeCodeOf(socket));
        }
        return codes;
      });

      // Never-reading sockets on a busy channel: cut off with 4008 while the reader beside them gets all.
      const neverReadingAbuse = (async () => {
        const sockets = await Promise.all(neverReaders.map((who) => openSocket(who)));
        for (const socket of sockets) tcpOf(socket).pause();
        const cutOffsBefore = healthBefore.slow_consumer_closes;
        const sent: string[] = [];
        let cutOffs = 0;
        const floodStartedAt = Date.now();
        while (cutOffs < sockets.length && sent.length < BUSY_MAX_MESSAGES) {
          const batch = await Promise.all(
            Array.from({ length: BUSY_BATCH }, (_, i) =>
              ok<{ id: string }>(
                api(server, broadcaster, 'POST', '/messages', {
                  channel_id: busyChannel,
                  content: `busy ${sent.length + i} `.padEnd(BUSY_CONTENT, 'z'),
                }),
                201,
              ),
            ),
          );
          sent.push(...batch.map((message) => message.id));
          cutOffs = (await healthOf(server)).body.checks.realtime.slow_consumer_closes - cutOffsBefore;
        }
        const cutOffMs = Date.now() - floodStartedAt;
        // Reading again, they get what was on its way, then the close.
        for (const socket of sockets) tcpOf(socket).resume();
        const codes = await Promise.all(sockets.map((socket) => closeCodeOf(socket)));
        return { sent, cutOffs, cutOffMs, codes };
      })();

      // Half-open: TCP connections that send nothing, or an upgrade cut short, and never close.
      const silentAbuse = Array.from({ length: 3 }, async () => {
        const connection = await rawConnection('half_open_silent', server.port);
        rawConnections.push(connection);
        return connection;
      });
      const partialUpgradeAbuse = noPong.slice(0, 2).map(async (who) => {
        const connection = await rawConnection('half_open_partial_upgrade', server.port);
        rawConnections.push(connection);
        // The request line and headers without the blank line that ends them.
        connection.socket.write(upgradeRequest(server.port, who.id, who.headers).slice(0, -2));
        return connection;
      });
      // Sockets that stop answering pings: a ws client without its automatic pong, and a raw TCP
      // connection that completes the upgrade and then never writes again.
      const noPongAbuse = (async () => {
        const socket = await openSocket(noPong[2]!, { autoPong: false });
        const openedAt = Date.now();
        const code = await closeCodeOf(socket, GIVE_UP_MS);
        return { ms: code === undefined ? undefined : Date.now() - openedAt, code };
      })();
      const upgradedSilentAbuse = (async () => {
        const connection = await rawConnection('ws_upgraded_silent', server.port);
        rawConnections.push(connection);
        connection.socket.write(upgradeRequest(server.port, noPong[3]!.id, noPong[3]!.headers));
        await until(() => connection.answer.includes('"hello"') || connection.closedAt !== undefined, 10_000);
        const upgradedAt = Date.now();
        return { connection, upgradedAt };
      })();

      // Slowloris: a request's headers, one byte a second, never finished.
      const slowlorisAbuse = Array.from({ length: 3 }, async (_, i) => {
        const connection = await rawConnection('slowloris', server.port);
        rawConnections.push(connection);
        trickle(
          connection,
          `GET /api/v2/users/me HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nX-Slow-${i}: `,
          () => 'a',
        );
        return connection;
      });
      // Bodies that never end: a Content-Length larger than what is sent, and chunked bodies without
      // their last chunk (one trickling a byte a second).
      const bodyAbuse = [
        (async () => {
          const connection = await rawConnection('body_short_content_length', server.port);
          rawConnections.push(connection);
          const body = `{"channel_id":"${busyChannel}","content":"never finished`;
          connection.socket.write(
            [
              'POST /api/v2/messages HTTP/1.1',
              `Host: 127.0.0.1:${server.port}`,
              `Authorization: ${bodies[0]!.headers.authorization}`,
              'Content-Type: application/json',
              'Content-Length: 100000',
              '',
              body,
            ].join('\r\n'),
          );
          return connection;
        })(),
        (async () => {
          const connection = await rawConnection('body_chunked_upload', server.port);
          rawConnections.push(connection);
          const boundary = 'abuse-boundary-1234';
          const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="endless.txt"\r\nContent-Type: text/plain\r\n\r\nthis file never ends `;
          connection.socket.write(
            [
              'POST /api/v2/files HTTP/1.1',
              `Host: 127.0.0.1:${server.port}`,
              `Authorization: ${bodies[1]!.headers.authorization}`,
              `Content-Type: multipart/form-data; boundary=${boundary}`,
              'Transfer-Encoding: chunked',
              '',
              `${Buffer.byteLength(head).toString(16)}\r\n${head}\r\n`,
            ].join('\r\n'),
          );
          trickle(connection, '', () => '1\r\nx\r\n');
          return connection;
        })(),
        (async () => {
          const connection = await rawConnection('body_chunked_json', server.port);
          rawConnections.push(connection);
          const part = `{"channel_id":"${busyChannel}","content":"`;
          connection.socket.write(
            [
              'POST /api/v2/messages HTTP/1.1',
              `Host: 127.0.0.1:${server.port}`,
              `Authorization: ${bodies[2]!.headers.authorization}`,
              'Content-Type: application/json',
              'Transfer-Encoding: chunked',
              '',
              `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`,
            ].join('\r\n'),
          );
          return connection;
        })(),
      ];

      // Every raw connection must be closed by the server: wait for each, up to GIVE_UP_MS.
      const rawOutcome = async (opened: Promise<RawConnection>) => {
        const connection = await opened;
        await Promise.race([connection.closed, pause(GIVE_UP_MS)]);
        recordClose(
          connection.kind,
          connection.closedAt === undefined ? undefined : connection.closedAt - connection.openedAt,
          connection.answer,
        );
      };
      const [garbageResults, badUtf8Code, oversizedCodes, neverReading, noPongResult] = await Promise.all([
        Promise.all(garbageAbuse),
        badUtf8Abuse,
        Promise.all(oversizedAbuse),
        neverReadingAbuse,
        noPongAbuse,
        ...[...silentAbuse, ...partialUpgradeAbuse, ...slowlorisAbuse, ...bodyAbuse].map(rawOutcome),
        upgradedSilentAbuse.then(async ({ connection, upgradedAt }) => {
          await Promise.race([connection.closed, pause(GIVE_UP_MS)]);
          recordClose(
            connection.kind,
            connection.closedAt === undefined ? undefined : connection.closedAt - upgradedAt,
          );
          expect(connection.answer, 'the raw upgrade was accepted').toMatch(/^HTTP\/1\.1 101/);
        }),
      ]);
      recordClose('ws_no_pong', noPongResult.ms);
      const abuseMs = Date.now() - abuseStartedAt;

      // The good clients: everything delivered to every other member.
      chat.running = false;
      await chatting;
      const expectedDeliveries = chat.sent * (GOOD_CHATTERS - 1);
      const delivered = () => [...chat.messages.values()].reduce((sum, m) => sum + m.reached.size, 0);
      await until(() => delivered() >= expectedDeliveries, 15_000);
      await until(() => neverReading.sent.every((id) => busyReceived.has(id)), 15_000);

      // Afterwards: only the good sockets are left, and memory came back within bounds.
      await until(
        async () => (await healthOf(server)).body.checks.realtime.sockets === GOOD_CHATTERS + 1,
        15_000,
      );
      await pause(2000);
      const after = await memoryOf(server);
      const healthAfter = (await healthOf(server)).body.checks.realtime;
      watchingHealth = false;
      await healthWatch;

      // What the detection plugin recorded for the abusers' user principals.
      type SecurityEvent = { action: string; rules: { id: string }[] };
      const eventsOf = async (who: Person) =>
        (
          await ok<{ events: SecurityEvent[] }>(
            api(server, admin, 'GET', `/admin/security/events?principal=user:${who.id}&limit=200`),
          )
        ).events;
      const hasRule = (events: SecurityEvent[], rule: string) =>
        events.some((event) => event.rules.some((r) => r.id === rule));
      let events = new Map<string, SecurityEvent[]>();
      await until(async () => {
        events = new Map(
          await Promise.all(
            [...garbage, ...oversized].map(async (who) => [who.id, await eventsOf(who)] as const),
          ),
        );
        return (
          garbage.every((who) => hasRule(events.get(who.id)!, 'protocol.malformed_frame')) &&
          oversized.every((who) => hasRule(events.get(who.id)!, 'protocol.oversized_frame'))
        );
      }, 15_000);
      const eventsByRule = new Map<string, number>();
      const eventsByAction = new Map<string, number>();
      for (const list of events.values())
        for (const event of list) {
          eventsByAction.set(event.action, (eventsByAction.get(event.action) ?? 0) + 1);
          for (const rule of event.rules) eventsByRule.set(rule.id, (eventsByRule.get(rule.id) ?? 0) + 1);
        }

      const stillOpenGood = goodSockets.filter((socket) => socket.closeCode !== undefined).length;
      const maxOf = (kind: string) => Math.max(...(timesToClose.get(kind) ?? [Number.NaN]));
      const minOf = (kind: string) => Math.min(...(timesToClose.get(kind) ?? [Number.NaN]));
      const figures: Record<string, number | string | boolean> = {
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        ws_heartbeat_ms: HEARTBEAT_MS,
        ws_max_frame_bytes: MAX_FRAME,
        ws_max_buffered_bytes: MAX_BUFFERED,
        abuse_phase_s: Math.round(abuseMs / 100) / 10,
        abusers_garbage_frames: garbage.length,
        abusers_invalid_utf8: 1,
        abusers_oversized_frames: oversized.length,
        abusers_never_reading: neverReaders.length,
        abusers_half_open_silent: silentAbuse.length,
        abusers_half_open_partial_upgrade: partialUpgradeAbuse.length,
        abusers_ws_no_pong: 2,
        abusers_slowloris: slowlorisAbuse.length,
        abusers_endless_body: bodyAbuse.length,
        ...Object.fromEntries(
          [...closes].sort(([a], [b]) => a - b).map(([code, n]) => [`closes_${code}`, n]),
        ),
        garbage_error_frames_answered: garbageResults.reduce((sum, r) => sum + r.errors, 0),
        busy_messages_sent: neverReading.sent.length,
        busy_cut_off_after_ms: neverReading.cutOffMs,
        busy_reader_received: neverReading.sent.filter((id) => busyReceived.has(id)).length,
        slow_consumer_closes: healthAfter.slow_consumer_closes - healthBefore.slow_consumer_closes,
        heartbeat_terminations: healthAfter.heartbeat_terminations - healthBefore.heartbeat_terminations,
      };
      for (const kind of timesToClose.keys()) {
        figures[`time_to_close_${kind}_min_ms`] = minOf(kind);
        figures[`time_to_close_${kind}_max_ms`] = maxOf(kind);
      }
      for (const [kind, lines] of answers)
        figures[`answer_${kind}`] = [...new Set(lines)].join(' / ') || '(none)';
      Object.assign(figures, {
        not_closed_by_server: notClosed.join(', ') || 'none',
        rss_before_mib: mib(before.rss),
        rss_after_mib: mib(after.rss),
        heap_before_mib: mib(before.heap),
        heap_after_mib: mib(after.heap),
        good_messages_sent: chat.sent,
        good_deliveries_expected: expectedDeliveries,
        good_deliveries: delivered(),
        good_send_errors: chat.errors.length,
        good_p50_ms_baseline: percentile(chat.latencies.baseline, 50),
        good_p99_ms_baseline: percentile(chat.latencies.baseline, 99),
        good_p50_ms_under_abuse: percentile(chat.latencies.abuse, 50),
        good_p99_ms_under_abuse: percentile(chat.latencies.abuse, 99),
        good_max_ms_under_abuse: Math.max(...chat.latencies.abuse),
        health_answers_200: healthAnswers.ok,
        health_failures: healthAnswers.failed.length,
        ...Object.fromEntries([...eventsByRule].map(([rule, n]) => [`security_events_${rule}`, n])),
        ...Object.fromEntries(
          [...eventsByAction].map(([action, n]) => [`security_events_action_${action}`, n]),
        ),
      });
      console.warn('abuse figures', figures);

      const checks: string[] = [];
      const check = (sentence: string, holds: boolean) =>
        checks.push(holds ? sentence : `NOT HELD: ${sentence}`);
      check(
        `GET /health answered 200 all ${healthAnswers.ok} times it was asked`,
        healthAnswers.failed.length === 0,
      );
      check(
        `every one of the ${expectedDeliveries} deliveries of the well-behaved clients' messages arrived`,
        delivered() === expectedDeliveries && chat.errors.length === 0 && stillOpenGood === 0,
      );
      check(
        `the reader beside the never-reading sockets got all ${neverReading.sent.length} busy messages`,
        neverReading.sent.every((id) => busyReceived.has(id)),
      );
      check(
        'never-reading sockets were closed with 4008 and the server dropped them',
        neverReading.codes.every((code) => code === 4008) && healthAfter.sockets === GOOD_CHATTERS + 1,
      );
      check(
        'oversized frames were closed with 1009 and invalid UTF-8 with 1007',
        oversizedCodes.flat().every((code) => code === 1009) && badUtf8Code === 1007,
      );
      check(
        `slow and half-open HTTP connections were closed within REQUEST_TIMEOUT_MS and 5 s of slack (${HTTP_CLOSE_BOUND_MS / 1000} s)`,
        notClosed.length === 0 && SLOW_HTTP_KINDS.every((kind) => maxOf(kind) <= HTTP_CLOSE_BOUND_MS),
      );
      check(
        `sockets that stopped answering pings were cut within three heartbeats (${HEARTBEAT_CLOSE_BOUND_MS / 1000} s)`,
        maxOf('ws_no_pong') <= HEARTBEAT_CLOSE_BOUND_MS &&
          maxOf('ws_upgraded_silent') <= HEARTBEAT_CLOSE_BOUND_MS,
      );
      check(
        `RSS after the abuse (${mib(after.rss)} MiB) within 128 MiB of before (${mib(before.rss)} MiB)`,
        after.rss - before.rss < 128 * MiB,
      );
      check(
        'the security events show protocol.malformed_frame for every garbage sender and protocol.oversized_frame for every oversized one',
        garbage.every((who) => hasRule(events.get(who.id)!, 'protocol.malformed_frame')) &&
          oversized.every((who) => hasRule(events.get(who.id)!, 'protocol.oversized_frame')),
      );
      check('the server process is still running', server.child.exitCode === null);
      const abuserCount = Object.entries(figures)
        .filter(([name]) => name.startsWith('abusers_'))
        .reduce((sum, [, n]) => sum + Number(n), 0);
      recordSection('abuse', {
        summary: `One server (REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS}, WS_HEARTBEAT_MS=${HEARTBEAT_MS}, WS_MAX_BUFFERED=${MAX_BUFFERED}) with ${GOOD_CHATTERS} well-behaved chatters while ${abuserCount} abusive clients sent garbage and oversized frames, never read, held half-open connections, trickled headers and never finished bodies.`,
        figures,
        checks,
      });

      // The assertions, each with what was seen.
      expect(healthAnswers.failed, 'health answers other than 200').toEqual([]);
      expect(server.child.exitCode).toBeNull();
      expect(chat.errors, 'error frames answering good sends').toEqual([]);
      expect(stillOpenGood, 'good sockets closed by the server').toBe(0);
      expect(delivered()).toBe(expectedDeliveries);
      expect(neverReading.sent.filter((id) => !busyReceived.has(id))).toEqual([]);
      expect(neverReading.codes).toEqual(neverReaders.map(() => 4008));
      expect(healthAfter.sockets).toBe(GOOD_CHATTERS + 1);
      expect(oversizedCodes.flat()).toEqual(oversized.flatMap(() => [1009, 1009]));
      expect(badUtf8Code).toBe(1007);
      expect(notClosed, 'connections the server never closed').toEqual([]);
      // Soft: a late close is reported with everything below still checked.
      expect
        .soft(
          SLOW_HTTP_KINDS.filter((kind) => !(maxOf(kind) <= HTTP_CLOSE_BOUND_MS)).map(
            (kind) => `${kind} closed after ${maxOf(kind)} ms`,
          ),
          `slow HTTP connections closed later than ${HTTP_CLOSE_BOUND_MS} ms`,
        )
        .toEqual([]);
      expect(maxOf('ws_no_pong')).toBeLessThanOrEqual(HEARTBEAT_CLOSE_BOUND_MS);
      expect(maxOf('ws_upgraded_silent')).toBeLessThanOrEqual(HEARTBEAT_CLOSE_BOUND_MS);
      expect(after.rss - before.rss).toBeLessThan(128 * MiB);
      for (const who of garbage) expect(hasRule(events.get(who.id)!, 'protocol.malformed_frame')).toBe(true);
      for (const who of oversized)
        expect(hasRule(events.get(who.id)!, 'protocol.oversized_frame')).toBe(true);
    },
  );
});
