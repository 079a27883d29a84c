// Soak: mixed traffic against one real server for PROFILE.soakSeconds after PROFILE.soakWarmupSeconds of
// warm-up. Twenty people in four group channels, each on a WebSocket (two with a second tab), send
// messages (socket and REST), read history, react, upload small files and reconnect now and then (resuming
// what they missed). Every delivery is counted per connection; memory is sampled throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartBody, multipartHeaders } from '../files/fixtures.js';
import type { Frame } from '../realtime/client.js';
import {
  api,
  connectTo,
  loginAdmin,
  memoryOf,
  newGroup,
  newPerson,
  pause,
  startSwitchboard,
  stopEverything,
  type Answer,
  type Person,
  type ServerProcess,
  type TestSocket,
} from './harness.js';
import { PROFILE } from './profile.js';
import { recordSection } from './report.js';

const USERS = 20;
const CHANNELS = 4;
/** Users 0..SECOND_TABS-1 also keep a second, passive tab open (it must get its own copy of everything). */
const SECOND_TABS = 2;
/** Each user acts about this often (jittered ±50%). */
const ACTION_EVERY_MS = 1000;
/** A user reconnects at most this often. */
const RECONNECT_GAP_MS = PROFILE.name === 'full' ? 60_000 : 20_000;
const SAMPLE_EVERY_MS = PROFILE.name === 'full' ? 5000 : 1000;
const WARMUP_MS = PROFILE.soakWarmupSeconds * 1000;
const SOAK_MS = PROFILE.soakSeconds * 1000;
const REACTIONS = ['👍', 'ok', '🎉', 'heart'];
const MiB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
const random = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

interface SentMessage {
  channelId: string;
  seq: number;
}

/** One connection of a user, as long as it lives: sockets that reconnect are the same connection. */
interface Client {
  name: string;
  who: Person;
  channels: string[];
  socket: TestSocket;
  /** Ids of the messages this connection was given (live, in an ack, or by resume). */
  seen: Set<string>;
  /** Per channel, the change_seq up to which the live stream is known complete (for resume). */
  position: Map<string, number>;
  waiting: Map<string, (frame: Frame) => void>;
  syncs: Frame[];
  nextId: number;
  /** The socket we are closing ourselves (to reconnect). */
  closing: TestSocket | undefined;
  lastReconnectAt: number;
}

interface Traffic {
  requests: Map<string, number>;
  failures: string[];
  http5xx: number;
  httpOther: number;
  wsErrors: number;
  unexpectedCloses: string[];
}

describe('soak', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startSwitchboard('soak', {
      env: { FILE_UPLOADS_PER_HOUR: '1000000', ACCESS_TOKEN_TTL: '7200' },
    });
  });

  afterAll(async () => {
    await stopEverything();
  });

  it(
    `delivers everything and keeps its memory flat over ${PROFILE.soakSeconds} s of mixed traffic`,
    { timeout: (PROFILE.soakSeconds + PROFILE.soakWarmupSeconds + 240) * 1000 },
    async () => {
      const admin = await loginAdmin(server);
      const people = await Promise.all(Array.from({ length: USERS }, () => newPerson(server, admin)));
      // Channel k: users k, k+4, k+8… and k+1, k+5…: everyone in two channels, ten to a channel.
      const membersOf = Array.from({ length: CHANNELS }, (_, k) =>
        people.filter((_, i) => i % CHANNELS === k || (i + 1) % CHANNELS === k),
      );
      const channelIds = await Promise.all(
        membersOf.map((members) => newGroup(server, members[0]!, members.slice(1))),
      );
      const channelsOf = (who: Person) => channelIds.filter((_, k) => membersOf[k]!.includes(who));

      const traffic: Traffic = {
        requests: new Map(),
        failures: [],
        http5xx: 0,
        httpOther: 0,
        wsErrors: 0,
        unexpectedCloses: [],
      };
      const count = (kind: string) => traffic.requests.set(kind, (traffic.requests.get(kind) ?? 0) + 1);
      const sent = new Map<string, SentMessage>();
      const recent = new Map<string, string[]>(channelIds.map((id) => [id, []]));
      const remember = (message: { id: string; channel_id: string; seq: number }) => {
        sent.set(message.id, { channelId: message.channel_id, seq: message.seq });
        const list = recent.get(message.channel_id)!;
        list.push(message.id);
        if (list.length > 50) list.shift();
      };

      /** A REST call: counted by kind; anything but the expected status is a failure. */
      async function rest<T>(
        kind: string,
        call: Promise<Answer<T>>,
        expected: number,
      ): Promise<T | undefined> {
        count(kind);
        let answer: Answer<T>;
        try {
          answer = await call;
        } catch (error) {
          traffic.failures.push(`${kind}: ${(error as Error).message}`);
          return undefined;
        }
        if (answer.status === expected) return answer.body;
        if (answer.status >= 500) traffic.http5xx += 1;
        else traffic.httpOther += 1;
        traffic.failures.push(`${kind}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
        return undefined;
      }

      // ---- connections and what they are given ----

      let running = true;
      let finished = false;

      function take(client: Client, frame: Frame): void {
        if (frame.type === 'chat_message' && typeof frame.id === 'string') {
          client.seen.add(frame.id);
          const channelId = String(frame.channel_id);
          // Live events of a channel come in change_seq order: everything before this one has come too.
          client.position.set(
            channelId,
            Math.max(client.position.get(channelId) ?? 0, Number(frame.change_seq)),
          );
        } else if (frame.type === 'sync') {
          for (const message of frame.messages as { id: string }[]) client.seen.add(message.id);
          client.syncs.push(frame);
        } else if (frame.type === 'ack' || frame.type === 'error') {
          const message = frame.message as { id?: string } | undefined;
          if (frame.type === 'ack' && typeof message?.id === 'string') client.seen.add(message.id);
          if (frame.type === 'error') {
            traffic.wsErrors += 1;
            traffic.failures.push(`${client.name} socket error: ${JSON.stringify(frame).slice(0, 300)}`);
          }
          const waiter = typeof frame.ref === 'string' ? client.waiting.get(frame.ref) : undefined;
          if (waiter) {
            client.waiting.delete(frame.ref as string);
            waiter(frame);
          }
        }
      }

      async function attach(client: Client): Promise<void> {
        const socket = await connectTo(server, client.who, 30_000);
        client.socket = socket;
        // Frames that came with hello, then each frame as it comes (the recorder's list is emptied, so a
        // long soak does not keep every frame).
        for (const frame of socket.frames) take(client, frame);
        socket.frames.length = 0;
        socket.socket.on('message', (data) => {
          socket.frames.length = 0;
          take(client, JSON.parse(data.toString()) as Frame);
        });
        void socket.closed.then((code) => {
          if (socket !== client.closing && !finished)
            traffic.unexpectedCloses.push(`${client.name}: ${code}`);
        });
      }

      function request(client: Client, frame: Record<string, unknown>, timeoutMs = 30_000): Promise<Frame> {
        const id = `r${client.nextId++}`;
        return new Promise((resolve) => {
          const timer = setTimeout(() => {
            client.waiting.delete(id);
            traffic.failures.push(`${client.name}: no answer to ${String(frame.type)} in ${timeoutMs} ms`);
            resolve({ type: 'timeout' });
          }, timeoutMs);
          client.waiting.set(id, (answer) => {
            clearTimeout(timer);
            resolve(answer);
          });
          client.socket.send({ ...frame, id });
        });
      }

      const clients: Client[] = [];
      const newClient = async (who: Person, name: string): Promise<Client> => {
        const client: Client = {
          name,
          who,
          channels: channelsOf(who),
          socket: undefined as unknown as TestSocket,
          seen: new Set(),
          position: new Map(),
          waiting: new Map(),
          syncs: [],
          nextId: 1,
          closing: undefined,
          lastReconnectAt: Date.now(),
        };
        await attach(client);
        clients.push(client);
        return client;
      };
      const primaries = await Promise.all(people.map((who, i) => newClient(who, `user${i}`)));
      await Promise.all(people.slice(0, SECOND_TABS).map((who, i) => newClient(who, `user${i}-tab2`)));

      // ---- what a user does ----

      let fileNumber = 0;
      async function upload(client: Client, channelId: string): Promise<string | undefined> {
        fileNumber += 1;
        const body = multipartBody([
          { name: 'channel_id', body: channelId },
          {
            name: 'file',
            filename: `notes-${fileNumber}.txt`,
            contentType: 'text/plain',
            body: `soak notes ${fileNumber}\n`.repeat(20),
          },
        ]);
        const call = (async (): Promise<Answer<{ id: string }>> => {
          const response = await fetch(`http://127.0.0.1:${server.port}/api/v2/files`, {
            method: 'POST',
            headers: { ...client.who.headers, ...multipartHeaders() },
            body: new Uint8Array(body),
            signal: AbortSignal.timeout(30_000),
          });
          const text = await response.text();
          return { status: response.status, body: (text ? JSON.parse(text) : null) as { id: string } };
        })();
        return (await rest('upload', call, 201))?.id;
      }

      async function sendOverSocket(client: Client, payload: Record<string, unknown>, kind: string) {
        count(kind);
        const ack = await request(client, payload);
        const message = ack.message as { id: string; channel_id: string; seq: number } | undefined;
        if (ack.type === 'ack' && message) remember(message);
      }

      async function sendOverRest(client: Client, payload: Record<string, unknown>, kind: string) {
        const message = await rest<{ id: string; channel_id: string; seq: number }>(
          kind,
          api(server, client.who, 'POST', '/messages', payload),
          201,
        );
        if (message) remember(message);
      }

      /**
       * Resumes every channel from the position the old socket reached, paging while a sync is incomplete.
       * (Not from what the new socket has seen: a message it got live may follow one sent while it was away.)
       */
      async function resume(client: Client, from: Map<string, number>): Promise<void> {
        for (const channelId of client.channels) {
          let since = from.get(channelId) ?? 0;
          for (let page = 0; page < 100; page += 1) {
            client.syncs = [];
            count('ws_resume');
            const ack = await request(client, { type: 'resume', channels: { [channelId]: since } });
            const sync = client.syncs.find((frame) => frame.channel_id === channelId);
            if (ack.type !== 'ack' || !sync) {
              traffic.failures.push(`${client.name}: resume of ${channelId} answered ${JSON.stringify(ack)}`);
              return;
            }
            since = Number(sync.last_seq);
            client.position.set(channelId, Math.max(client.position.get(channelId) ?? 0, since));
            if (sync.complete) break;
          }
        }
      }

      async function reconnect(client: Client): Promise<void> {
        count('ws_reconnect');
        client.lastReconnectAt = Date.now();
        client.closing = client.socket;
        await client.socket.close();
        const reached = new Map(client.position);
        // Away for a moment while the others keep sending to its channels.
        await pause(300 + Math.random() * 1200);
        await attach(client);
        await resume(client, reached);
      }

      async function act(client: Client, n: number): Promise<void> {
        const channelId = random(client.channels);
        const content = `soak ${client.name} #${n} in ${channelId.slice(-6)}`;
        const roll = Math.random();
        if (roll < 0.35) {
          await sendOverSocket(client, { type: 'chat_message', channel_id: channelId, content }, 'ws_send');
        } else if (roll < 0.6) {
          await sendOverRest(
            client,
            { channel_id: channelId, content, client_id: `${client.name}-${n}` },
            'rest_send',
          );
        } else if (roll < 0.7) {
          const which = n % 3;
          const url =
            which === 0
              ? `/channels/${channelId}/messages?limit=50`
              : which === 1
                ? `/messages?channel_id=${channelId}&limit=50`
                : `/channels/${channelId}/changes?since_seq=${Math.max(0, (client.position.get(channelId) ?? 0) - 40)}&limit=50`;
          await rest('history', api(server, client.who, 'GET', url), 200);
        } else if (roll < 0.85) {
          const messageId = random(recent.get(channelId)!);
          if (!messageId) return;
          const reaction = encodeURIComponent(random(REACTIONS));
          const method = Math.random() < 0.7 ? 'PUT' : 'DELETE';
          await rest(
            method === 'PUT' ? 'reaction_add' : 'reaction_remove',
            api(server, client.who, method, `/messages/${messageId}/reactions/${reaction}`),
            200,
          );
        } else if (roll < 0.92) {
          const fileId = await upload(client, channelId);
          if (!fileId) return;
          if (n % 2 === 0)
            await sendOverSocket(
              client,
              { type: 'file_upload', file_id: fileId, channel_id: channelId, content: `file ${n}` },
              'ws_file_message',
            );
          else
            await sendOverRest(
              client,
              { channel_id: channelId, content: `file ${n}`, message_type: 'file', attachments: [fileId] },
              'rest_file_message',
            );
        } else if (roll < 0.96) {
          const seq = Math.max(
            0,
            ...[...sent.values()].filter((m) => m.channelId === channelId).map((m) => m.seq),
          );
          await rest(
            'mark_read',
            api(server, client.who, 'POST', `/channels/${channelId}/read`, { seq }),
            200,
          );
        } else if (Date.now() - client.lastReconnectAt > RECONNECT_GAP_MS) {
          await reconnect(client);
        } else {
          count('ws_ping');
          await request(client, { type: 'ping' });
        }
      }

      async function userLoop(client: Client): Promise<void> {
        // Spread the start so the users do not act in step.
        await pause(Math.random() * ACTION_EVERY_MS);
        for (let n = 0; running; n += 1) {
          const started = Date.now();
          await act(client, n);
          await pause(Math.max(0, ACTION_EVERY_MS * (0.5 + Math.random()) - (Date.now() - started)));
        }
      }

      // ---- the run ----

      const samples: { at: number; rss: number; heap: number }[] = [];
      const startedAt = Date.now();
      const sampling = (async () => {
        while (running) {
          try {
            const memory = await memoryOf(server);
            samples.push({ at: Date.now() - startedAt, ...memory });
          } catch (error) {
            traffic.failures.push(`health: ${(error as Error).message}`);
          }
          await pause(SAMPLE_EVERY_MS);
        }
      })();
      const loops = Promise.all(primaries.map(userLoop));
      await pause(WARMUP_MS + SOAK_MS);
      running = false;
      await Promise.all([loops, sampling]);
      const durationMs = Date.now() - startedAt - WARMUP_MS;

      // Deliveries: every message to every connection of every member of its channel.
      const expectedOf = (client: Client) =>
        [...sent.values()].filter((message) => client.channels.includes(message.channelId)).length;
      const countedOf = (client: Client) =>
        [...sent.entries()].filter(
          ([id, message]) => client.channels.includes(message.channelId) && client.seen.has(id),
        ).length;
      const totals = () => {
        let expected = 0;
        let counted = 0;
        for (const client of clients) {
          expected += expectedOf(client);
          counted += countedOf(client);
        }
        return { expected, counted };
      };
      const drainDeadline = Date.now() + 30_000;
      while (totals().counted < totals().expected && Date.now() < drainDeadline) await pause(250);
      finished = true;
      const { expected, counted } = totals();
      const missing: string[] = [];
      for (const client of clients)
        for (const [id, message] of sent)
          if (client.channels.includes(message.channelId) && !client.seen.has(id))
            missing.push(`${client.name} lacks ${id} (seq ${message.seq})`);

      // Memory after warm-up: the mean of the first and the last third of the samples (windows long enough
      // to span a few of the heap's GC cycles).
      const measured = samples.filter((sample) => sample.at >= WARMUP_MS);
      const windowSize = Math.max(3, Math.floor(measured.length / 3));
      const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
      const first = measured.slice(0, windowSize);
      const last = measured.slice(-windowSize);
      const rssStart = mean(first.map((s) => s.rss));
      const rssEnd = mean(last.map((s) => s.rss));
      const heapStart = mean(first.map((s) => s.heap));
      const heapEnd = mean(last.map((s) => s.heap));
      const growth = (start: number, end: number) => Math.round(((end - start) / start) * 1000) / 10;
      const rssGrowth = growth(rssStart, rssEnd);
      const heapGrowth = growth(heapStart, heapEnd);
      // The heap's floor (its lowest sample in each window, just after a collection): less noisy, reported.
      const floorGrowth = growth(Math.min(...first.map((s) => s.heap)), Math.min(...last.map((s) => s.heap)));

      const figures: Record<string, number | string | boolean> = {
        profile: PROFILE.name,
        warmup_s: PROFILE.soakWarmupSeconds,
        duration_s: Math.round(durationMs / 1000),
        users: USERS,
        channels: CHANNELS,
        connections: clients.length,
        messages_sent: sent.size,
        deliveries_expected: expected,
        deliveries_counted: counted,
        missing: expected - counted,
        http_5xx: traffic.http5xx,
        http_other_failures: traffic.httpOther,
        ws_error_frames: traffic.wsErrors,
        unexpected_closes: traffic.unexpectedCloses.length,
        rss_start_mib: mib(rssStart),
        rss_end_mib: mib(rssEnd),
        rss_growth_pct: rssGrowth,
        heap_start_mib: mib(heapStart),
        heap_end_mib: mib(heapEnd),
        heap_growth_pct: heapGrowth,
        heap_floor_growth_pct: floorGrowth,
        memory_samples: measured.length,
        memory_sample_every_s: SAMPLE_EVERY_MS / 1000,
        memory_window_samples: windowSize,
        rss_min_mib: mib(Math.min(...measured.map((s) => s.rss))),
        rss_max_mib: mib(Math.max(...measured.map((s) => s.rss))),
        rss_mean_mib: mib(mean(measured.map((s) => s.rss))),
        heap_min_mib: mib(Math.min(...measured.map((s) => s.heap))),
        heap_max_mib: mib(Math.max(...measured.map((s) => s.heap))),
        heap_mean_mib: mib(mean(measured.map((s) => s.heap))),
        ...Object.fromEntries(
          [...traffic.requests]
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([kind, n]) => [`requests_${kind}`, n]),
        ),
      };
      console.warn('soak figures', figures);
      if (traffic.failures.length) console.warn('soak failures', traffic.failures.slice(0, 20));
      if (missing.length) console.warn('soak missing', missing.slice(0, 20));

      const check = (sentence: string, holds: boolean) => (holds ? sentence : `NOT HELD: ${sentence}`);
      recordSection('soak', {
        summary: `${USERS} users in ${CHANNELS} group channels (${clients.length} WebSocket connections) sent messages over the socket and REST, read history, reacted, uploaded .txt files and reconnected now and then, for ${Math.round(durationMs / 1000)} s after ${PROFILE.soakWarmupSeconds} s of warm-up.`,
        figures,
        checks: [
          check(
            `every one of the ${expected} deliveries was counted (live, in an ack or by resume)`,
            counted === expected,
          ),
          check('no request was answered with a 5xx', traffic.http5xx === 0),
          check(
            'no request or frame failed and no socket was closed by the server',
            traffic.failures.length === 0 && traffic.unexpectedCloses.length === 0,
          ),
          check(`RSS grew by less than 10% after warm-up (${rssGrowth}%)`, rssGrowth < 10),
          check(`heap grew by less than 10% after warm-up (${heapGrowth}%)`, heapGrowth < 10),
        ],
      });

      expect(traffic.http5xx).toBe(0);
      expect(traffic.failures.slice(0, 10)).toEqual([]);
      expect(traffic.unexpectedCloses).toEqual([]);
      expect(missing.slice(0, 10)).toEqual([]);
      expect(counted).toBe(expected);
      expect(measured.length).toBeGreaterThanOrEqual(2 * windowSize);
      expect(rssGrowth).toBeLessThan(10);
      expect(heapGrowth).toBeLessThan(10);
    },
  );
});
