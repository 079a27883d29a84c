// A client that stops reading: once the server's unsent output for it passes ws.max_buffered_bytes it is
// closed with 4008 (it hears the code when it reads again), everyone else keeps getting every message
// meanwhile, and it reconnects and resumes to exactly what it missed.
import { describe, expect, it } from 'vitest';
import type { PublicMessage } from '../../src/services/message-content.js';
import { call, createChannel, ok, person, send, unique, type Person } from '../conversations/fixtures.js';
import { connect, tcpOf, type Frame, type Sync, type TestSocket } from './client.js';
import { useListeningApp, type ListeningApp } from './fixtures.js';

/** Long messages fill buffers fast: 9,000 characters, under the default messages.max_length. */
const LONG = 9_000;
const BATCH = 10;
/** Enough to fill the kernel's socket buffers on both ends many times over, never reached in practice. */
const MAX_MESSAGES = 4_000;

function longContent(label: string): string {
  return `${label} `.padEnd(LONG, 'x');
}

/** Resumes `channelId` from `since`, paging while a sync says complete:false; returns every message. */
async function resumeAll(socket: TestSocket, channelId: string, since: number): Promise<PublicMessage[]> {
  const messages: PublicMessage[] = [];
  for (let pages = 1; ; pages += 1) {
    expect(pages).toBeLessThan(200);
    const from = socket.frames.length;
    const ack = await socket.request({ type: 'resume', channels: { [channelId]: since } }, 15_000);
    expect(ack, JSON.stringify(ack)).toMatchObject({ type: 'ack', channels: 1 });
    const sync = socket.frames
      .slice(from, socket.frames.indexOf(ack))
      .find((frame): frame is Frame & Sync => frame.type === 'sync');
    expect(sync).toBeDefined();
    messages.push(...sync!.messages);
    since = sync!.last_seq;
    if (sync!.complete) return messages;
  }
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function trio(listening: ListeningApp): Promise<{
  alice: Person;
  bob: Person;
  carol: Person;
  channelId: string;
}> {
  const [alice, bob, carol] = await Promise.all([
    person(listening.app),
    person(listening.app),
    person(listening.app),
  ]);
  const channel = await createChannel(listening.app, bob, {
    name: unique('slow'),
    kind: 'group',
    members: [alice.id, carol.id],
  });
  return { alice, bob, carol, channelId: channel.id };
}

describe('a slow consumer', () => {
  // A small output bound; pages small enough that one sync of long messages fits under it.
  const listening = useListeningApp({ ws: { max_buffered_bytes: 64 * 1024, resume_limit: 5 } });

  it(
    'is closed with 4008 while others keep receiving, and reconnects and resumes what it missed',
    { timeout: 120_000 },
    async () => {
      const { app, port } = listening();
      const { hub } = app.realtime;
      const { alice, bob, carol, channelId } = await trio(listening());
      const slow = await connect(port, alice);
      const other = await connect(port, carol);
      const before = hub.stats();

      tcpOf(slow).pause();
      const sent: PublicMessage[] = [];
      // Bob writes long messages until the server gives up on alice; carol reads every one of them
      // before the next batch goes out.
      while (hub.stats().slow_consumer_closes === before.slow_consumer_closes) {
        expect(sent.length, 'the slow consumer was never closed').toBeLessThan(MAX_MESSAGES);
        const batch = await Promise.all(
          Array.from({ length: BATCH }, (_, i) =>
            send(app, bob, { channel_id: channelId, content: longContent(`m${sent.length + i}`) }),
          ),
        );
        sent.push(...batch);
        const last = batch.reduce((a, b) => (a.seq > b.seq ? a : b));
        await other.waitForType('chat_message', (frame) => frame.id === last.id, 15_000);
      }
      expect(hub.stats().slow_consumer_closes).toBe(before.slow_consumer_closes + 1);
      // More while alice is gone: she gets these only by resuming.
      for (let n = 0; n < 3; n += 1)
        sent.push(await send(app, bob, { channel_id: channelId, content: longContent(`after ${n}`) }));

      // Carol got everything, once each, and is still connected.
      const last = sent.at(-1)!;
      await other.waitForType('chat_message', (frame) => frame.id === last.id, 15_000);
      const carolIds = other.ofType('chat_message').map((frame) => String(frame.id));
      expect(new Set(carolIds).size).toBe(carolIds.length);
      expect([...carolIds].sort()).toEqual(sent.map((message) => message.id).sort());
      expect(other.closeCode).toBeUndefined();

      // Alice reads again: what was already on its way, then the close code.
      expect(slow.closeCode).toBeUndefined();
      tcpOf(slow).resume();
      expect(await slow.closed).toBe(4008);
      expect(slow.closeReason).toMatch(/resume/);
      await waitUntil(() => hub.stats().sockets === before.sockets - 1, 'the hub forgot the closed socket');

      const received = slow.ofType('chat_message') as unknown as (Frame & PublicMessage)[];
      const receivedIds = received.map((message) => message.id);
      expect(new Set(receivedIds).size).toBe(receivedIds.length);
      // Kernel buffers hold a good deal, but not everything that was sent.
      expect(received.length).toBeLessThan(sent.length);
      const position = Math.max(0, ...received.map((message) => message.change_seq));

      // Reconnect and resume from the last position seen: exactly the rest, nothing twice.
      const again = await connect(port, alice);
      const resumed = await resumeAll(again, channelId, position);
      const resumedIds = resumed.map((message) => message.id);
      expect(new Set(resumedIds).size).toBe(resumedIds.length);
      expect(resumedIds.filter((id) => receivedIds.includes(id))).toEqual([]);
      expect([...receivedIds, ...resumedIds].sort()).toEqual(sent.map((message) => message.id).sort());
      const history = new Map(sent.map((message) => [message.id, message]));
      for (const message of resumed) expect(message.content).toBe(history.get(message.id)!.content);
      expect(again.closeCode).toBeUndefined();
      expect(hub.stats().slow_consumer_closes).toBe(before.slow_consumer_closes + 1);
      await Promise.all([again.close(), other.close()]);
    },
  );
});

describe('resuming long messages under the default limits', () => {
  // Default ws.max_buffered_bytes (1 MiB) and ws.resume_limit (200).
  const listening = useListeningApp();

  it('a client that reads promptly can resume a channel of long messages in one go', async () => {
    const { app, port } = listening();
    const { alice, bob, channelId } = await trio(listening());
    const sent: PublicMessage[] = [];
    for (let n = 0; n < 150; n += BATCH)
      sent.push(
        ...(await Promise.all(
          Array.from({ length: BATCH }, (_, i) =>
            send(app, bob, { channel_id: channelId, content: longContent(`m${n + i}`) }),
          ),
        )),
      );
    const history = await ok<{ messages: PublicMessage[] }>(
      call(app, alice, 'GET', `/channels/${channelId}/changes`, undefined, { limit: '200' }),
    );
    expect(history.messages).toHaveLength(150);

    // A fresh, fast client catches up from 0: its sync must not be refused as "too far behind".
    const socket = await connect(port, alice);
    const resumed = await resumeAll(socket, channelId, 0);
    expect(resumed.map((message) => message.id)).toEqual(history.messages.map((message) => message.id));
    expect(socket.closeCode).toBeUndefined();
    await socket.close();
  });
});
