// Resuming after a disconnect: a client keeps each channel's messages as the frames it received left them
// and the last change position it saw there; after missing hundreds of messages, edits, deletes and
// reactions it sends `resume` (paging on while a `sync` says complete:false) and ends with exactly the
// server's state, having received nothing twice. Also the page bound and channels it may not read.
import { describe, expect, it } from 'vitest';
import type { PublicMessage } from '../../src/services/message-content.js';
import { call, createChannel, ok, person, send, unique, type Person } from '../conversations/fixtures.js';
import { connect, type Frame, type Sync, type TestSocket } from './client.js';
import { useListeningApp } from './fixtures.js';

const RESUME_LIMIT = 50;
const listening = useListeningApp({ ws: { resume_limit: RESUME_LIMIT } });
const app = () => listening().app;

interface Changes {
  channel_id: string;
  messages: PublicMessage[];
  last_seq: number;
  has_more: boolean;
}

/** What a client knows: each channel's messages by id, and the last change position seen there. */
class LocalState {
  readonly channels = new Map<string, Map<string, PublicMessage>>();
  readonly positions = new Map<string, number>();

  constructor(channelIds: string[]) {
    for (const id of channelIds) {
      this.channels.set(id, new Map());
      this.positions.set(id, 0);
    }
  }

  private saw(channelId: string, position: number): void {
    this.positions.set(channelId, Math.max(this.positions.get(channelId) ?? 0, position));
  }

  private put(message: PublicMessage): void {
    const messages = this.channels.get(message.channel_id);
    if (!messages) return; // a direct message or a channel this client does not track
    messages.set(message.id, message);
    this.saw(message.channel_id, message.change_seq);
  }

  /** Applies what a connected socket receives: events, the acks of its own sends, and syncs. */
  absorb(frames: readonly Frame[]): void {
    for (const frame of frames) {
      if (frame.type === 'chat_message' || frame.type === 'message_update') {
        const { type: _type, ...message } = frame;
        this.put(message as unknown as PublicMessage);
      } else if (frame.type === 'ack' && frame.message) {
        this.put(frame.message as PublicMessage);
      } else if (frame.type === 'reaction_update') {
        const { channel_id, message_id, reactions, change_seq } = frame as unknown as {
          channel_id: string;
          message_id: string;
          reactions: PublicMessage['reactions'];
          change_seq: number;
        };
        const known = this.channels.get(channel_id)?.get(message_id);
        if (known) this.put({ ...known, reactions, change_seq });
      } else if (frame.type === 'sync') {
        const sync = frame as unknown as Sync;
        for (const message of sync.messages) this.put(message);
        this.saw(sync.channel_id, sync.last_seq);
      }
    }
  }
}

/** The server's state of a channel: the changes feed from 0, every page. */
async function serverState(who: Person, channelId: string): Promise<PublicMessage[]> {
  const all: PublicMessage[] = [];
  let since = 0;
  for (;;) {
    const page = await ok<Changes>(
      call(app(), who, 'GET', `/channels/${channelId}/changes`, undefined, {
        since_seq: String(since),
        limit: '200',
      }),
    );
    all.push(...page.messages);
    since = page.last_seq;
    if (!page.has_more) return all;
  }
}

/** What a user sees of a message: compared between the client's copy and the server's. */
const visible = (message: PublicMessage) => ({
  id: message.id,
  seq: message.seq,
  sender_id: message.sender_id,
  content: message.content,
  deleted: message.deleted,
  edited_at: message.edited_at,
  reactions: message.reactions,
});

/**
 * Sends one `resume` and returns what answered it: the sync and error frames before the ack, and the ack.
 * Nothing else happens on these channels meanwhile, so every frame in between belongs to this resume.
 */
async function resume(
  socket: TestSocket,
  channels: Record<string, number>,
): Promise<{ syncs: Sync[]; errors: Frame[]; ack: Frame }> {
  const from = socket.frames.length;
  const ack = await socket.request({ type: 'resume', channels }, 15_000);
  expect(ack).toMatchObject({ type: 'ack' });
  const answered = socket.frames.slice(from, socket.frames.indexOf(ack));
  return {
    syncs: answered.filter((frame) => frame.type === 'sync') as unknown as Sync[],
    errors: answered.filter((frame) => frame.type === 'error'),
    ack,
  };
}

const react = (who: Person, messageId: string, reaction: string) =>
  ok(call(app(), who, 'PUT', `/messages/${messageId}/reactions/${encodeURIComponent(reaction)}`));
const unreact = (who: Person, messageId: string, reaction: string) =>
  ok(call(app(), who, 'DELETE', `/messages/${messageId}/reactions/${encodeURIComponent(reaction)}`));
const edit = (who: Person, messageId: string, content: string) =>
  ok<PublicMessage>(call(app(), who, 'PATCH', `/messages/${messageId}`, { content }));
const remove = (who: Person, messageId: string) => ok(call(app(), who, 'DELETE', `/messages/${messageId}`));

/** Sends `frame` on `socket` and expects an ack; returns the ack's message. */
async function viaSocket(socket: TestSocket, frame: Record<string, unknown>): Promise<PublicMessage> {
  const answer = await socket.request(frame, 15_000);
  expect(answer, JSON.stringify(answer)).toMatchObject({ type: 'ack' });
  return answer.message as PublicMessage;
}

describe('resuming after a disconnect', () => {
  it(
    'a client that misses 500 messages across 20 channels, with edits, deletes and reactions, and resumes ' +
      'ends with exactly the server state: nothing missing, nothing twice',
    { timeout: 120_000 },
    async () => {
      const [alice, bob, carol, dave] = await Promise.all([
        person(app()),
        person(app()),
        person(app()),
        person(app()),
      ]);
      const channels = [];
      for (let i = 0; i < 20; i += 1)
        channels.push(
          await createChannel(app(), bob, {
            name: unique(`resume-${i}`),
            kind: 'group',
            members: [alice.id, carol.id],
          }),
        );
      const channelIds = channels.map((channel) => channel.id);
      // A group alice is not in, where things also happen while she is away.
      const elsewhere = await createChannel(app(), dave, {
        name: unique('elsewhere'),
        kind: 'group',
        members: [bob.id],
      });

      // ---- connected: alice follows along ----
      const local = new LocalState(channelIds);
      const first = await connect(listening().port, alice);
      const carolSocket = await connect(listening().port, carol);
      const seenBefore = new Map<string, PublicMessage[]>();
      await Promise.all(
        channels.map(async (channel) => {
          const fromBob = [
            await send(app(), bob, { channel_id: channel.id, content: `${channel.name} hello` }),
            await send(app(), bob, { channel_id: channel.id, content: `${channel.name} again` }),
          ];
          const fromAlice = await viaSocket(first, {
            type: 'chat_message',
            channel_id: channel.id,
            content: `${channel.name} from alice`,
          });
          await react(carol, fromBob[0]!.id, '👍');
          await react(alice, fromBob[1]!.id, '👀');
          seenBefore.set(channel.id, [...fromBob, fromAlice]);
        }),
      );
      await send(app(), dave, { channel_id: elsewhere.id, content: 'not for alice' });
      // Alice has every message and every reaction she is due before she goes.
      for (const [channelId, messages] of seenBefore) {
        const [hello, again] = messages;
        await first.waitForType('chat_message', (frame) => frame.id === again!.id, 10_000);
        await first.waitForType(
          'reaction_update',
          (frame) =>
            frame.message_id === hello!.id &&
            frame.channel_id === channelId &&
            Array.isArray(frame.reactions),
          10_000,
        );
        await first.waitForType('reaction_update', (frame) => frame.message_id === again!.id, 10_000);
      }
      await first.close();
      local.absorb(first.frames);
      const liveIds = first.ofType('chat_message').map((frame) => String(frame.id));
      expect(new Set(liveIds).size).toBe(liveIds.length);
      expect(first.frames.some((frame) => frame.channel_id === elsewhere.id)).toBe(false);
      for (const [channelId, messages] of seenBefore) {
        expect([...local.channels.get(channelId)!.keys()].sort()).toEqual(
          messages.map((message) => message.id).sort(),
        );
        expect(local.positions.get(channelId)).toBeGreaterThan(0);
      }
      const positionsAtDisconnect = new Map(local.positions);

      // ---- away: 500 messages (120 in the first channel, 20 in each other), a fifth of them sent by
      // carol over her socket, then edits, deletes and reactions on old and new messages ----
      const sentWhileAway = new Map<string, PublicMessage[]>();
      await Promise.all(
        channels.map(async (channel, index) => {
          const count = index === 0 ? 120 : 20;
          const sent: PublicMessage[] = [];
          for (let n = 1; n <= count; n += 1) {
            const content = `${channel.name} #${n}`;
            sent.push(
              n % 5 === 0
                ? await viaSocket(carolSocket, { type: 'chat_message', channel_id: channel.id, content })
                : await send(app(), bob, { channel_id: channel.id, content }),
            );
          }
          sentWhileAway.set(channel.id, sent);
        }),
      );
      expect([...sentWhileAway.values()].reduce((total, sent) => total + sent.length, 0)).toBe(500);
      await Promise.all(
        channels.map(async (channel) => {
          const [hello, again, fromAlice] = seenBefore.get(channel.id)!;
          const sent = sentWhileAway.get(channel.id)!;
          await edit(bob, hello!.id, `${channel.name} hello, edited`);
          await edit(bob, sent[0]!.id, `${channel.name} #1, edited`);
          await viaSocket(carolSocket, {
            type: 'edit_message',
            message_id: sent[4]!.id,
            content: `${channel.name} #5, edited by carol`,
          });
          await edit(bob, sent[1]!.id, `${channel.name} #2, edited twice? no, once`);
          await remove(bob, again!.id);
          await remove(bob, sent[2]!.id);
          await viaSocket(carolSocket, { type: 'delete_message', message_id: sent[9]!.id });
          await react(carol, fromAlice!.id, '🎉');
          await unreact(carol, hello!.id, '👍');
          await react(bob, sent[3]!.id, '✅');
          await viaSocket(carolSocket, {
            type: 'reaction_update',
            message_id: sent[3]!.id,
            reaction_type: '🔥',
            action: 'add',
          });
          await react(carol, sent[1]!.id, '👍');
        }),
      );
      await send(app(), dave, { channel_id: elsewhere.id, content: 'still not for alice' });

      // ---- back: resume every channel from its last position, paging while a sync is incomplete ----
      const second = await connect(listening().port, alice);
      const resumed = new Map<string, PublicMessage[]>(channelIds.map((id) => [id, []]));
      let pending: Record<string, number> = Object.fromEntries(local.positions);
      let rounds = 0;
      let incompleteSeen = 0;
      while (Object.keys(pending).length > 0) {
        rounds += 1;
        expect(rounds).toBeLessThan(10);
        const { syncs, errors, ack } = await resume(second, pending);
        expect(errors).toEqual([]);
        expect(ack.channels).toBe(Object.keys(pending).length);
        expect(syncs.map((sync) => sync.channel_id).sort()).toEqual(Object.keys(pending).sort());
        local.absorb(syncs as unknown as Frame[]);
        const next: Record<string, number> = {};
        for (const sync of syncs) {
          expect(sync.messages.length).toBeLessThanOrEqual(RESUME_LIMIT);
          resumed.get(sync.channel_id)!.push(...sync.messages);
          if (sync.messages.length > 0) expect(sync.last_seq).toBe(sync.messages.at(-1)!.change_seq);
          expect(sync.last_seq).toBeGreaterThanOrEqual(pending[sync.channel_id]!);
          if (!sync.complete) {
            incompleteSeen += 1;
            expect(sync.messages).toHaveLength(RESUME_LIMIT);
            next[sync.channel_id] = sync.last_seq;
          }
        }
        pending = next;
      }
      // The busy channel took three pages (120 new messages and more changes, 50 at a time).
      expect(incompleteSeen).toBeGreaterThanOrEqual(2);
      expect(rounds).toBeGreaterThanOrEqual(3);

      // One more message after the resume arrives live and lands in the same state.
      const after = await send(app(), bob, { channel_id: channels[7]!.id, content: 'welcome back' });
      await second.waitForType('chat_message', (frame) => frame.id === after.id, 10_000);
      local.absorb(second.frames.filter((frame) => frame.type !== 'sync'));
      expect(second.frames.some((frame) => frame.channel_id === elsewhere.id)).toBe(false);

      // ---- compare with the server ----
      for (const channel of channels) {
        const server = await serverState(bob, channel.id);
        const mine = local.channels.get(channel.id)!;
        // Same ids, same content, deleted flags and reactions.
        expect([...mine.keys()].sort()).toEqual(server.map((message) => message.id).sort());
        expect(
          [...mine.values()].sort((a, b) => a.seq - b.seq).map(visible),
          `channel ${channel.name}`,
        ).toEqual([...server].sort((a, b) => a.seq - b.seq).map(visible));
        expect(local.positions.get(channel.id)).toBe(server.at(-1)!.change_seq);

        // Nothing twice: the resume brought each message at most once, and exactly those that changed
        // after the position alice had when she left.
        const ids = resumed.get(channel.id)!.map((message) => message.id);
        expect(new Set(ids).size, `duplicates in ${channel.name}`).toBe(ids.length);
        const since = positionsAtDisconnect.get(channel.id)!;
        const changedSince = server
          .filter((message) => message.change_seq > since && message.id !== after.id)
          .map((message) => message.id);
        expect([...ids].sort()).toEqual([...changedSince].sort());
        // 3 old messages touched (edit, delete, reaction change) plus every new one.
        const sentCount = sentWhileAway.get(channel.id)!.length;
        expect(ids).toHaveLength(sentCount + 3);
      }

      // The tombstones and edits really are in alice's copy, not only in the server's.
      const firstChannel = local.channels.get(channels[0]!.id)!;
      const [hello, again, fromAlice] = seenBefore.get(channels[0]!.id)!;
      const sent = sentWhileAway.get(channels[0]!.id)!;
      expect(firstChannel.get(again!.id)).toMatchObject({ deleted: true, content: '' });
      expect(firstChannel.get(sent[2]!.id)).toMatchObject({ deleted: true });
      expect(firstChannel.get(sent[9]!.id)).toMatchObject({ deleted: true });
      expect(firstChannel.get(hello!.id)).toMatchObject({
        content: `${channels[0]!.name} hello, edited`,
        reactions: [],
      });
      expect(firstChannel.get(sent[4]!.id)!.content).toBe(`${channels[0]!.name} #5, edited by carol`);
      expect(firstChannel.get(fromAlice!.id)!.reactions).toEqual([
        { reaction_type: '🎉', user_ids: [carol.id], count: 1 },
      ]);
      expect(
        firstChannel
          .get(sent[3]!.id)!
          .reactions.map((reaction) => reaction.reaction_type)
          .sort(),
      ).toEqual(['✅', '🔥'].sort());
      await Promise.all([second.close(), carolSocket.close()]);
    },
  );

  it('stops a page at ws.resume_limit with complete:false; the next resume goes on from last_seq', async () => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const long = await createChannel(app(), bob, {
      name: unique('long'),
      kind: 'group',
      members: [alice.id],
    });
    const exact = await createChannel(app(), bob, {
      name: unique('exact'),
      kind: 'group',
      members: [alice.id],
    });
    for (let n = 1; n <= RESUME_LIMIT + 10; n += 1)
      await send(app(), bob, { channel_id: long.id, content: `long ${n}` });
    for (let n = 1; n <= RESUME_LIMIT; n += 1)
      await send(app(), bob, { channel_id: exact.id, content: `exact ${n}` });
    const socket = await connect(listening().port, alice);

    const firstPage = await resume(socket, { [long.id]: 0, [exact.id]: 0 });
    expect(firstPage.ack.channels).toBe(2);
    const longPage = firstPage.syncs.find((sync) => sync.channel_id === long.id)!;
    const exactPage = firstPage.syncs.find((sync) => sync.channel_id === exact.id)!;
    expect(longPage.messages).toHaveLength(RESUME_LIMIT);
    expect(longPage.complete).toBe(false);
    expect(longPage.last_seq).toBe(longPage.messages.at(-1)!.change_seq);
    // Exactly a page's worth is complete: there is nothing more to ask for.
    expect(exactPage.messages).toHaveLength(RESUME_LIMIT);
    expect(exactPage.complete).toBe(true);

    const secondPage = await resume(socket, { [long.id]: longPage.last_seq });
    expect(secondPage.syncs).toHaveLength(1);
    expect(secondPage.syncs[0]!.messages).toHaveLength(10);
    expect(secondPage.syncs[0]!.complete).toBe(true);

    const walked = [...longPage.messages, ...secondPage.syncs[0]!.messages];
    expect(walked.map((message) => message.content)).toEqual(
      Array.from({ length: RESUME_LIMIT + 10 }, (_, i) => `long ${i + 1}`),
    );
    expect(walked).toEqual(await serverState(alice, long.id));
    expect(exactPage.messages).toEqual(await serverState(alice, exact.id));

    // Resuming at the high-water mark: nothing, complete, the same mark.
    const caughtUp = await resume(socket, { [long.id]: secondPage.syncs[0]!.last_seq });
    expect(caughtUp.syncs).toEqual([
      {
        type: 'sync',
        channel_id: long.id,
        messages: [],
        last_seq: secondPage.syncs[0]!.last_seq,
        complete: true,
      },
    ]);
    await socket.close();
  });

  it('answers a channel the user may not read with an error entry, and still syncs the others', async () => {
    const [alice, bob, moderator] = await Promise.all([
      person(app()),
      person(app()),
      person(app(), { roles: ['moderator'] }),
    ]);
    const mine = await createChannel(app(), bob, {
      name: unique('mine'),
      kind: 'group',
      members: [alice.id],
    });
    const theirs = await createChannel(app(), bob, { name: unique('theirs'), kind: 'group' });
    const open = await createChannel(app(), moderator, { name: unique('open'), kind: 'public' });
    const hello = await send(app(), bob, { channel_id: mine.id, content: 'hello alice' });
    await send(app(), bob, { channel_id: theirs.id, content: 'secret' });
    await send(app(), moderator, { channel_id: open.id, content: 'join me first' });
    const socket = await connect(listening().port, alice);

    const { syncs, errors, ack } = await resume(socket, {
      [theirs.id]: 0,
      [mine.id]: 0,
      [open.id]: 0,
      'no-such-channel': 0,
    });
    expect(ack.channels).toBe(4);
    expect(syncs).toEqual([
      { type: 'sync', channel_id: mine.id, messages: [hello], last_seq: hello.change_seq, complete: true },
    ]);
    expect(errors).toHaveLength(3);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ channel_id: theirs.id, code: 'CHANNEL_NOT_FOUND' }),
        expect.objectContaining({ channel_id: open.id, code: 'NOT_CHANNEL_MEMBER' }),
        expect.objectContaining({ channel_id: 'no-such-channel', code: 'CHANNEL_NOT_FOUND' }),
      ]),
    );
    // Nothing of the other channels leaked, and the socket carries on.
    expect(JSON.stringify(errors)).not.toContain('secret');
    expect(JSON.stringify(errors)).not.toContain('join me first');
    expect(socket.closeCode).toBeUndefined();
    const pong = await socket.request({ type: 'ping' });
    expect(pong.type).toBe('ack');
    await socket.close();
  });

  it('stops syncing a channel to a connected member as soon as they are removed from it', async () => {
    // A resume of a channel the hub has the user in reads no membership (the hub's view is what live
    // delivery goes by): a removal must take the channel out of that view at once.
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const team = await createChannel(app(), bob, {
      name: unique('team'),
      kind: 'group',
      members: [alice.id],
    });
    const before = await send(app(), bob, { channel_id: team.id, content: 'while alice is in' });
    const socket = await connect(listening().port, alice);
    const first = await resume(socket, { [team.id]: 0 });
    expect(first.syncs).toEqual([
      { type: 'sync', channel_id: team.id, messages: [before], last_seq: before.change_seq, complete: true },
    ]);

    await ok(call(app(), bob, 'DELETE', `/channels/${team.id}/members/${alice.id}`), 204);
    await send(app(), bob, { channel_id: team.id, content: 'after alice left' });
    const second = await resume(socket, { [team.id]: 0 });
    expect(second.syncs).toEqual([]);
    expect(second.errors).toEqual([
      expect.objectContaining({ channel_id: team.id, code: 'CHANNEL_NOT_FOUND' }),
    ]);
    expect(JSON.stringify(second.errors)).not.toContain('after alice left');
    await socket.close();
  });
});
