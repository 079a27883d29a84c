// Sending and changing messages over HTTP: seq numbering under concurrent senders, idempotent retries by
// client_id, who the sender is, direct messages by recipient_id, the seed's history form, content rules,
// replies and attachments, who may post where, edits, deletes (with the moderator's audit line), hiding,
// the per-sender rate limit and the events a send publishes. Every refused request is checked to have
// stored nothing: history and the changes feed are as they were, and the next send takes the next seq.
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PublicChannel } from '../../src/services/channels.js';
import type { PublicMessage } from '../../src/services/message-content.js';
import { useTestApp } from '../helper.js';
import { eventually, sleep, type InjectResponse } from '../identity/fixtures.js';
import {
  call,
  conversationOverrides,
  createChannel,
  expectError,
  expectValidation,
  ok,
  person,
  recordEvents,
  send,
  unique,
  type Person,
} from './fixtures.js';

interface History {
  channel_id: string | null;
  messages: PublicMessage[];
  has_more: boolean;
  last_seq: number;
}

interface Changes {
  channel_id: string;
  messages: PublicMessage[];
  last_seq: number;
  has_more: boolean;
}

interface ChannelState {
  messages: PublicMessage[];
  last_seq: number;
  change_seq: number;
}

/** Readers and checks over the API of one app, shared by the describe blocks below. */
function helpers(app: () => FastifyInstance) {
  const history = (who: Person, channelId: string, query: Record<string, string> = {}) =>
    ok<History>(
      call(app(), who, 'GET', `/channels/${channelId}/messages`, undefined, { limit: '200', ...query }),
    );

  const seedHistory = (who: Person, query: Record<string, string>) =>
    ok<History>(call(app(), who, 'GET', '/messages', undefined, query));

  const changes = (who: Person, channelId: string) =>
    ok<Changes>(
      call(app(), who, 'GET', `/channels/${channelId}/changes`, undefined, { since_seq: '0', limit: '200' }),
    );

  /** What `who` can read of a channel: its history and its change position. */
  const state = async (who: Person, channelId: string): Promise<ChannelState> => {
    const [shown, changed] = await Promise.all([history(who, channelId), changes(who, channelId)]);
    return { messages: shown.messages, last_seq: shown.last_seq, change_seq: changed.last_seq };
  };

  /**
   * A refused request left the channel as it was (history, changes, no event), and the next successful
   * send (by `next`) takes the very next seq and change position: no gap.
   */
  const expectNothingStored = async (
    who: Person,
    channelId: string,
    before: ChannelState,
    events: ReturnType<typeof recordEvents>,
    next: Person = who,
  ) => {
    expect(await state(who, channelId)).toEqual(before);
    const published = events.events.filter(
      (entry) => entry.audience.kind === 'channel' && entry.audience.channelId === channelId,
    );
    expect(published).toEqual([]);
    events.stop();
    const after = await send(app(), next, { channel_id: channelId, content: unique('after') });
    expect(after.seq).toBe(before.last_seq + 1);
    expect(after.change_seq).toBe(before.change_seq + 1);
  };

  const myChannels = async (who: Person) =>
    (await ok<{ channels: PublicChannel[] }>(call(app(), who, 'GET', '/channels'))).channels;

  const group = (owner: Person, others: Person[] = []) =>
    createChannel(app(), owner, { name: unique('msg'), kind: 'group', members: others.map((o) => o.id) });

  return { history, seedHistory, changes, state, expectNothingStored, myChannels, group };
}

describe('messages', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;
  const { history, seedHistory, changes, state, expectNothingStored, myChannels, group } = helpers(app);

  let moderator: Person;
  beforeAll(async () => {
    moderator = await person(app(), { roles: ['moderator'] });
  });

  // ---- numbering ----

  describe('seq numbering', () => {
    it('50 concurrent sends from five members get seqs 1..50 once each, and history returns them in order', async () => {
      const members = await Promise.all(Array.from({ length: 5 }, () => person(app())));
      const channel = await group(members[0]!, members.slice(1));

      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, index) =>
          call(app(), members[index % 5], 'POST', '/messages', {
            channel_id: channel.id,
            content: `burst ${index}`,
          }),
        ),
      );
      for (const response of responses) expect(response.statusCode, response.body).toBe(201);
      const sent = responses.map((response) => response.json<PublicMessage>());
      expect(sent.map((message) => message.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, index) => index + 1),
      );
      expect(new Set(sent.map((message) => message.id)).size).toBe(50);

      const shown = await history(members[3]!, channel.id);
      expect(shown.has_more).toBe(false);
      expect(shown.last_seq).toBe(50);
      expect(shown.messages.map((message) => message.seq)).toEqual(
        Array.from({ length: 50 }, (_, index) => index + 1),
      );
      const bySeq = new Map(sent.map((message) => [message.seq, message]));
      for (const message of shown.messages) {
        expect(message.id).toBe(bySeq.get(message.seq)!.id);
        expect(message.content).toBe(bySeq.get(message.seq)!.content);
      }
      expect(await ok(call(app(), members[1], 'GET', `/channels/${channel.id}`))).toMatchObject({
        last_seq: 50,
      });
      // The next message simply follows.
      expect(
        (await send(app(), members[2]!, { channel_id: channel.id, content: 'after the burst' })).seq,
      ).toBe(51);
    });
  });

  // ---- idempotent sends ----

  describe('client_id', () => {
    it('ten concurrent retries with one client_id store one message: one 201, nine 200, all the same id', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const clientId = unique('cid');

      const responses = await Promise.all(
        Array.from({ length: 10 }, () =>
          call(app(), alice, 'POST', '/messages', {
            channel_id: channel.id,
            content: 'sent over a flaky network',
            client_id: clientId,
          }),
        ),
      );
      const statuses = responses.map((response) => response.statusCode);
      expect(
        statuses.filter((status) => status === 201),
        statuses.join(),
      ).toHaveLength(1);
      expect(
        statuses.filter((status) => status === 200),
        statuses.join(),
      ).toHaveLength(9);
      const bodies = responses.map((response) => response.json<PublicMessage>());
      expect(new Set(bodies.map((body) => body.id)).size).toBe(1);
      expect(bodies[0]).toMatchObject({ seq: 1, client_id: clientId, content: 'sent over a flaky network' });

      const shown = await history(bob, channel.id);
      expect(shown.messages.map((message) => message.id)).toEqual([bodies[0]!.id]);
      // A later retry is answered the same way; the next new message takes seq 2 (no gap).
      const retried = await send(
        app(),
        alice,
        { channel_id: channel.id, content: 'sent over a flaky network', client_id: clientId },
        200,
      );
      expect(retried).toEqual(bodies[0]);
      expect((await send(app(), alice, { channel_id: channel.id, content: 'next' })).seq).toBe(2);
    });

    it('a client_id reused with other content or in another channel is 409 CLIENT_ID_CONFLICT and stores nothing', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const other = await group(alice, [bob]);
      const clientId = unique('cid');
      const first = await send(app(), alice, {
        channel_id: channel.id,
        content: 'original',
        client_id: clientId,
      });
      const before = await state(alice, channel.id);
      const otherBefore = await state(alice, other.id);
      const events = recordEvents(app());

      expectError(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'something else',
          client_id: clientId,
        }),
        409,
        'CLIENT_ID_CONFLICT',
      );
      expectError(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: other.id,
          content: 'original',
          client_id: clientId,
        }),
        409,
        'CLIENT_ID_CONFLICT',
      );
      expect(await state(alice, other.id)).toEqual(otherBefore);
      expect(before.messages.map((message) => message.id)).toEqual([first.id]);
      await expectNothingStored(alice, channel.id, before, events);
    });

    it('is per sender: another sender may use the same value for their own message', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const clientId = unique('cid');
      const fromAlice = await send(app(), alice, {
        channel_id: channel.id,
        content: 'hi',
        client_id: clientId,
      });
      const fromBob = await send(app(), bob, { channel_id: channel.id, content: 'hi', client_id: clientId });
      expect(fromBob.id).not.toBe(fromAlice.id);
      expect(fromBob).toMatchObject({ sender_id: bob.id, seq: 2, client_id: clientId });
      expect((await history(alice, channel.id)).messages.map((message) => message.sender_id)).toEqual([
        alice.id,
        bob.id,
      ]);
    });
  });

  // ---- the sender ----

  it('the sender is the authenticated user: sender_id and sender_name in the body are ignored', async () => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const channel = await group(alice, [bob]);
    const message = await send(app(), alice, {
      channel_id: channel.id,
      content: 'who am I?',
      sender_id: bob.id,
      sender_name: 'The CEO',
    });
    expect(message).toMatchObject({ sender_id: alice.id, sender_name: alice.name });
    expect((await history(bob, channel.id)).messages[0]).toMatchObject({
      sender_id: alice.id,
      sender_name: alice.name,
    });

    // The name comes from the user record: after a rename, new messages carry the new name.
    const renamed = `Renamed ${unique('n')}`;
    await ok(call(app(), alice, 'PATCH', '/users/me', { name: renamed }));
    const later = await send(app(), alice, { channel_id: channel.id, content: 'new name', sender_name: 'x' });
    expect(later.sender_name).toBe(renamed);
  });

  // ---- direct messages ----

  describe('direct messages', () => {
    it('a first message to a recipient creates the direct channel; later ones, by id or email, reuse it', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const events = recordEvents(app());
      const first = await send(app(), alice, { recipient_id: bob.id, content: 'hello bob' });
      expect(first).toMatchObject({
        channel_kind: 'direct',
        recipient_id: bob.id,
        sender_id: alice.id,
        seq: 1,
      });
      const second = await send(app(), alice, { recipient_id: bob.email.toUpperCase(), content: 'by email' });
      expect(second).toMatchObject({ channel_id: first.channel_id, recipient_id: bob.id, seq: 2 });
      const reply = await send(app(), bob, { recipient_id: alice.email, content: 'hi alice' });
      expect(reply).toMatchObject({ channel_id: first.channel_id, recipient_id: alice.id, seq: 3 });
      // Sending by channel_id to a direct channel names the other participant too.
      const byChannel = await send(app(), bob, { channel_id: first.channel_id, content: 'by channel' });
      expect(byChannel).toMatchObject({ channel_kind: 'direct', recipient_id: alice.id, seq: 4 });
      events.stop();

      for (const who of [alice, bob]) {
        const directs = (await myChannels(who)).filter((channel) => channel.kind === 'direct');
        expect(directs.map((channel) => channel.id)).toEqual([first.channel_id]);
        expect(directs[0]!.participants?.slice().sort()).toEqual([alice.id, bob.id].sort());
      }
      expect((await history(bob, first.channel_id)).messages.map((message) => message.content)).toEqual([
        'hello bob',
        'by email',
        'hi alice',
        'by channel',
      ]);
      const published = events.ofType('personal_message');
      expect(published.map((entry) => entry.event.id)).toEqual([first.id, second.id, reply.id, byChannel.id]);
      for (const entry of published)
        expect(entry.audience).toEqual({ kind: 'channel', channelId: first.channel_id });
      expect(events.ofType('chat_message')).toEqual([]);
    });

    it('first direct messages racing both ways open one channel, numbered without gaps', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const sent = await Promise.all([
        ...Array.from({ length: 3 }, (_, i) =>
          send(app(), alice, { recipient_id: bob.id, content: `a${i}` }),
        ),
        ...Array.from({ length: 3 }, (_, i) =>
          send(app(), bob, { recipient_id: alice.email, content: `b${i}` }),
        ),
      ]);
      expect(new Set(sent.map((message) => message.channel_id)).size).toBe(1);
      expect(sent.map((message) => message.seq).sort()).toEqual([1, 2, 3, 4, 5, 6]);
      for (const who of [alice, bob]) {
        const directs = (await myChannels(who)).filter((channel) => channel.kind === 'direct');
        expect(directs.map((channel) => channel.id)).toEqual([sent[0]!.channel_id]);
      }
      expect((await history(alice, sent[0]!.channel_id)).messages).toHaveLength(6);
    });

    it('to yourself or to an unknown recipient is 400 INVALID_RECIPIENT and creates no channel', async () => {
      const alice = await person(app());
      const events = recordEvents(app());
      for (const recipient of [
        alice.id,
        alice.email,
        'nobody-here@example.com',
        'ffffffffffffffffffffffff',
      ]) {
        expectError(
          await call(app(), alice, 'POST', '/messages', { recipient_id: recipient, content: 'hello?' }),
          400,
          'INVALID_RECIPIENT',
        );
      }
      events.stop();
      expect(events.events).toEqual([]);
      expect((await myChannels(alice)).filter((channel) => channel.kind === 'direct')).toEqual([]);
      expect(await seedHistory(alice, { recipient_id: alice.id })).toEqual({
        channel_id: null,
        messages: [],
        has_more: false,
        last_seq: 0,
      });
    });

    it('exactly one of channel_id and recipient_id is required', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      expectValidation(
        await call(app(), alice, 'POST', '/messages', { content: 'to nowhere' }),
        'channel_id',
      );
      expectValidation(
        await call(app(), alice, 'POST', '/messages', {
          content: 'to both',
          channel_id: channel.id,
          recipient_id: bob.id,
        }),
        'channel_id',
      );
      expect((await myChannels(alice)).filter((entry) => entry.kind === 'direct')).toEqual([]);
      await expectNothingStored(alice, channel.id, before, events);
    });
  });

  // ---- the seed's history form ----

  describe('GET /messages (the seed form)', () => {
    it('pages a direct conversation by recipient_id with before/after message-id cursors and has_more', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const sent: PublicMessage[] = [];
      for (let i = 1; i <= 5; i += 1)
        sent.push(
          await send(app(), i % 2 ? alice : bob, {
            recipient_id: i % 2 ? bob.id : alice.id,
            content: `m${i}`,
          }),
        );
      const contents = (body: History) => body.messages.map((message) => message.content);

      const latest = await seedHistory(alice, { recipient_id: bob.id, limit: '2' });
      expect(latest).toMatchObject({ channel_id: sent[0]!.channel_id, has_more: true, last_seq: 5 });
      expect(contents(latest)).toEqual(['m4', 'm5']);

      const older = await seedHistory(alice, { recipient_id: bob.id, limit: '2', before: sent[3]!.id });
      expect(contents(older)).toEqual(['m2', 'm3']);
      expect(older.has_more).toBe(true);
      const oldest = await seedHistory(alice, { recipient_id: bob.id, limit: '2', before: sent[1]!.id });
      expect(contents(oldest)).toEqual(['m1']);
      expect(oldest.has_more).toBe(false);

      const newer = await seedHistory(bob, { recipient_id: alice.email, limit: '3', after: sent[0]!.id });
      expect(contents(newer)).toEqual(['m2', 'm3', 'm4']);
      expect(newer.has_more).toBe(true);
      const newest = await seedHistory(bob, { recipient_id: alice.id, limit: '3', after: sent[3]!.id });
      expect(contents(newest)).toEqual(['m5']);
      expect(newest.has_more).toBe(false);

      const all = await seedHistory(bob, { recipient_id: alice.id });
      expect(contents(all)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
      expect(all.has_more).toBe(false);
    });

    it('pages a channel by channel_id (or its name); a conversation not started yet is empty', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const sent: PublicMessage[] = [];
      for (let i = 1; i <= 4; i += 1)
        sent.push(await send(app(), alice, { channel_id: channel.id, content: `c${i}` }));

      const page = await seedHistory(bob, { channel_id: channel.name, limit: '3' });
      expect(page).toMatchObject({ channel_id: channel.id, has_more: true, last_seq: 4 });
      expect(page.messages.map((message) => message.id)).toEqual(sent.slice(1).map((message) => message.id));
      const between = await seedHistory(bob, {
        channel_id: channel.id,
        after: sent[0]!.id,
        before: sent[3]!.id,
      });
      expect(between.messages.map((message) => message.content)).toEqual(['c2', 'c3']);

      expect(await seedHistory(bob, { recipient_id: carol.id })).toEqual({
        channel_id: null,
        messages: [],
        has_more: false,
        last_seq: 0,
      });
      expectError(
        await call(app(), carol, 'GET', '/messages', undefined, { channel_id: channel.id }),
        404,
        'CHANNEL_NOT_FOUND',
      );
    });

    it('refuses cursors from another conversation and malformed queries', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const elsewhere = await send(app(), alice, { recipient_id: bob.id, content: 'dm' });
      await send(app(), alice, { channel_id: channel.id, content: 'in the group' });
      const query = (q: Record<string, string>) => call(app(), alice, 'GET', '/messages', undefined, q);

      expectValidation(await query({ channel_id: channel.id, before: elsewhere.id }), 'before');
      expectValidation(await query({ channel_id: channel.id, after: `${channel.id}-99` }), 'after');
      expectValidation(await query({ channel_id: channel.id, after: 'ffffffffffffffffffffffff' }), 'after');
      expectValidation(await query({ channel_id: channel.id, after: 'not-an-id' }), 'after');
      expectValidation(await query({}), 'channel_id');
      expectValidation(await query({ channel_id: channel.id, recipient_id: bob.id }), 'channel_id');
      expectValidation(await query({ channel_id: channel.id, limit: '0' }), 'limit');
      expectValidation(await query({ channel_id: channel.id, limit: '201' }), 'limit');
    });
  });

  // ---- content ----

  describe('content', () => {
    it('is trimmed; newlines and tabs inside are kept', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      const message = await send(app(), alice, {
        channel_id: channel.id,
        content: '  \n line one\n\tindented line two \t\n ',
      });
      expect(message.content).toBe('line one\n\tindented line two');
      expect((await history(alice, channel.id)).messages[0]!.content).toBe('line one\n\tindented line two');
    });

    it('HTML is stored and returned verbatim, as plain text', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      const html = '<script>alert("x")</script> <b>bold</b> &amp; <img src=x onerror=alert(1)>';
      const message = await send(app(), alice, { channel_id: channel.id, content: html });
      expect(message.content).toBe(html);
      const response = await call(app(), alice, 'GET', `/channels/${channel.id}/messages`);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.json<History>().messages[0]!.content).toBe(html);
    });

    it('empty, blank or with control characters is 400 and stores nothing', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      await send(app(), alice, { channel_id: channel.id, content: 'first' });
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      for (const content of [
        '',
        '   ',
        '\n\t \n',
        'nul\u0000inside',
        'bell\u0007',
        'esc \u001b[31mred',
        'del\u007f',
        'vt\u000binside',
      ]) {
        expectValidation(
          await call(app(), alice, 'POST', '/messages', { channel_id: channel.id, content }),
          'content',
        );
      }
      expectValidation(await call(app(), alice, 'POST', '/messages', { channel_id: channel.id }), 'content');
      expectValidation(
        await call(app(), alice, 'POST', '/messages', { channel_id: channel.id, content: 42 }),
        'content',
      );
      await expectNothingStored(alice, channel.id, before, events);
    });

    it('C1 control characters (U+0080..U+009F) are refused like the other control characters', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      // U+009B is the 8-bit CSI: some terminals act on it as they do on ESC "[".
      for (const content of ['csi \u009b31m red', 'next line\u0085here']) {
        expectValidation(
          await call(app(), alice, 'POST', '/messages', { channel_id: channel.id, content }),
          'content',
        );
      }
      await expectNothingStored(alice, channel.id, before, events);
    });
  });

  // ---- replies and attachments ----

  describe('reply_to and attachments', () => {
    it('reply_to names a message in the same channel', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const parent = await send(app(), alice, { channel_id: channel.id, content: 'question?' });
      const reply = await send(app(), bob, {
        channel_id: channel.id,
        content: 'answer',
        reply_to: parent.id,
      });
      expect(reply.reply_to).toBe(parent.id);
      expect((await history(alice, channel.id)).messages[1]!.reply_to).toBe(parent.id);
      const plain = await send(app(), bob, { channel_id: channel.id, content: 'aside', reply_to: null });
      expect(plain.reply_to).toBeNull();
    });

    it('a reply_to in another channel or unknown is 400 INVALID_REPLY_TO; malformed is 400; nothing stored', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const other = await group(alice, [bob]);
      await send(app(), alice, { channel_id: channel.id, content: 'here' });
      const elsewhere = await send(app(), alice, { channel_id: other.id, content: 'there' });
      const before = await state(bob, channel.id);
      const events = recordEvents(app());
      for (const replyTo of [elsewhere.id, `${channel.id}-99`, 'ffffffffffffffffffffffff-1']) {
        expectError(
          await call(app(), bob, 'POST', '/messages', {
            channel_id: channel.id,
            content: 'r',
            reply_to: replyTo,
          }),
          400,
          'INVALID_REPLY_TO',
        );
      }
      expectValidation(
        await call(app(), bob, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'r',
          reply_to: 'nope',
        }),
        'reply_to',
      );
      await expectNothingStored(bob, channel.id, before, events);
    });

    it('attachments naming unknown files are 404 FILE_NOT_FOUND; a file message needs attachments; nothing stored', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      await send(app(), alice, { channel_id: channel.id, content: 'before' });
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      expectError(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'see attached',
          message_type: 'file',
          attachments: ['ffffffffffffffffffffffff'],
        }),
        404,
        'FILE_NOT_FOUND',
      );
      expectError(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'see attached',
          attachments: ['aaaaaaaaaaaaaaaaaaaaaaaa'],
        }),
        404,
        'FILE_NOT_FOUND',
      );
      expectValidation(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'a file without a file',
          message_type: 'file',
        }),
        'attachments',
      );
      expectValidation(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'a file without a file',
          message_type: 'file',
          attachments: [],
        }),
        'attachments',
      );
      expectValidation(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'bad id',
          attachments: ['../../etc/passwd'],
        }),
        'attachments',
      );
      expectValidation(
        await call(app(), alice, 'POST', '/messages', {
          channel_id: channel.id,
          content: 'odd type',
          message_type: 'image',
        }),
        'message_type',
      );
      await expectNothingStored(alice, channel.id, before, events);
    });
  });

  // ---- who may post ----

  describe('membership', () => {
    it('a non-member posting to a group is 404 CHANNEL_NOT_FOUND; to a public channel not joined, 403 NOT_CHANNEL_MEMBER', async () => {
      const [alice, outsider] = await Promise.all([person(app()), person(app())]);
      const privateGroup = await group(alice);
      const open = await createChannel(app(), moderator, { name: unique('pub'), kind: 'public' });
      await send(app(), alice, { channel_id: privateGroup.id, content: 'members only' });
      const groupBefore = await state(alice, privateGroup.id);
      const openBefore = await state(moderator, open.id);
      const events = recordEvents(app());

      expectError(
        await call(app(), outsider, 'POST', '/messages', { channel_id: privateGroup.id, content: 'hi' }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), outsider, 'POST', '/messages', { channel_id: privateGroup.name, content: 'hi' }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), outsider, 'POST', '/messages', { channel_id: 'no-such-channel', content: 'hi' }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), outsider, 'POST', '/messages', { channel_id: open.id, content: 'hi' }),
        403,
        'NOT_CHANNEL_MEMBER',
      );
      expectError(
        await call(app(), undefined, 'POST', '/messages', { channel_id: open.id, content: 'hi' }),
        401,
        'UNAUTHORIZED',
      );
      expect(await state(moderator, open.id)).toEqual(openBefore);
      await expectNothingStored(alice, privateGroup.id, groupBefore, events);

      await ok(call(app(), outsider, 'POST', `/channels/${open.id}/join`));
      expect((await send(app(), outsider, { channel_id: open.id, content: 'joined' })).seq).toBe(
        openBefore.last_seq + 1,
      );
    });
  });

  // ---- events ----

  it('a group send publishes chat_message with the whole message to the channel audience', async () => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const channel = await group(alice, [bob]);
    const events = recordEvents(app());
    const message = await send(app(), alice, { channel_id: channel.id, content: 'broadcast' });
    events.stop();
    const published = events.ofType('chat_message');
    expect(published).toHaveLength(1);
    expect(published[0]!.audience).toEqual({ kind: 'channel', channelId: channel.id });
    expect(published[0]!.event).toEqual({ type: 'chat_message', ...message });
    expect(events.ofType('personal_message')).toEqual([]);
  });

  // ---- edits ----

  describe('edits', () => {
    it('the sender edits within the window: new content, edited_at set, seq kept, message_update published', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const message = await send(app(), alice, { channel_id: channel.id, content: 'teh typo' });
      expect(message.edited_at).toBeNull();
      const events = recordEvents(app());
      const edited = await ok<PublicMessage>(
        call(app(), alice, 'PATCH', `/messages/${message.id}`, { content: '  the typo, fixed  ' }),
      );
      events.stop();
      expect(edited).toMatchObject({ id: message.id, seq: message.seq, content: 'the typo, fixed' });
      expect(edited.edited_at).toEqual(expect.any(String));
      expect(Date.parse(edited.edited_at!)).toBeGreaterThanOrEqual(Date.parse(message.timestamp));
      expect(edited.change_seq).toBeGreaterThan(message.change_seq);
      expect((await history(bob, channel.id)).messages).toEqual([edited]);
      const updates = events.ofType('message_update');
      expect(updates).toHaveLength(1);
      expect(updates[0]!.event).toEqual({ type: 'message_update', ...edited });
      expect(updates[0]!.audience).toEqual({ kind: 'channel', channelId: channel.id });
    });

    it('someone else editing is 403 NOT_MESSAGE_SENDER; bad content is 400; nothing changes', async () => {
      const [alice, bob, outsider] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const message = await send(app(), alice, { channel_id: channel.id, content: 'mine' });
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      expectError(
        await call(app(), bob, 'PATCH', `/messages/${message.id}`, { content: 'yours now' }),
        403,
        'NOT_MESSAGE_SENDER',
      );
      expectError(
        await call(app(), moderator, 'PATCH', `/messages/${message.id}`, { content: 'moderated' }),
        403,
        'NOT_CHANNEL_MEMBER',
      );
      expectError(
        await call(app(), outsider, 'PATCH', `/messages/${message.id}`, { content: 'hijack' }),
        404,
        'MESSAGE_NOT_FOUND',
      );
      for (const content of ['', '  ', 'nul\u0000']) {
        expectValidation(
          await call(app(), alice, 'PATCH', `/messages/${message.id}`, { content }),
          'content',
        );
      }
      expectValidation(await call(app(), alice, 'PATCH', `/messages/${message.id}`, {}), 'content');
      expectValidation(
        await call(app(), alice, 'PATCH', '/messages/not-an-id', { content: 'x' }),
        'messageId',
      );
      expectError(
        await call(app(), alice, 'PATCH', '/messages/ffffffffffffffffffffffff-1', { content: 'x' }),
        404,
        'MESSAGE_NOT_FOUND',
      );
      await expectNothingStored(alice, channel.id, before, events);
    });

    it('editing a deleted message is 409 MESSAGE_DELETED and the tombstone stays', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      const message = await send(app(), alice, { channel_id: channel.id, content: 'regret' });
      await ok(call(app(), alice, 'DELETE', `/messages/${message.id}`));
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      expectError(
        await call(app(), alice, 'PATCH', `/messages/${message.id}`, { content: 'unregret' }),
        409,
        'MESSAGE_DELETED',
      );
      await expectNothingStored(alice, channel.id, before, events);
    });
  });

  // ---- deletes and hiding ----

  describe('deletes', () => {
    it('the sender deletes for everyone: a tombstone with the same id and seq; deleting again changes nothing', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const message = await send(app(), alice, { channel_id: channel.id, content: 'oops, wrong chat' });
      await ok(call(app(), bob, 'PUT', `/messages/${message.id}/reactions/${encodeURIComponent('👀')}`));
      const later = await send(app(), bob, { channel_id: channel.id, content: 'what?' });
      const events = recordEvents(app());

      const tombstone = await ok<PublicMessage>(call(app(), alice, 'DELETE', `/messages/${message.id}`));
      expect(tombstone).toMatchObject({
        id: message.id,
        seq: message.seq,
        sender_id: alice.id,
        deleted: true,
        content: '',
        attachments: [],
        reactions: [],
      });
      const shown = await history(bob, channel.id);
      expect(shown.messages).toEqual([tombstone, later]);

      const again = await ok<PublicMessage>(call(app(), alice, 'DELETE', `/messages/${message.id}`));
      expect(again).toEqual(tombstone);
      events.stop();
      expect(events.ofType('message_update').map((entry) => entry.event.id)).toEqual([message.id]);
      expect((await changes(bob, channel.id)).last_seq).toBe(tombstone.change_seq);
    });

    it('a moderator deletes another member’s message in their channel, and the audit log records it', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob, moderator]);
      const message = await send(app(), bob, { channel_id: channel.id, content: 'rule-breaking content' });

      const tombstone = await ok<PublicMessage>(call(app(), moderator, 'DELETE', `/messages/${message.id}`));
      expect(tombstone).toMatchObject({ id: message.id, deleted: true, content: '', sender_id: bob.id });
      expect((await history(alice, channel.id)).messages[0]).toEqual(tombstone);

      const logDir = testApp().logDir;
      const auditLines = () =>
        fs
          .readdirSync(logDir)
          .filter((name) => /^audit\..*\.log$/.test(name))
          .flatMap((name) => fs.readFileSync(path.join(logDir, name), 'utf8').split('\n'))
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { audit?: Record<string, unknown> });
      const entry = () =>
        auditLines().find(
          (line) => line.audit?.action === 'message.delete_moderated' && line.audit.target_id === message.id,
        );
      expect(await eventually(async () => entry() !== undefined, 10_000)).toBe(true);
      expect(entry()!.audit).toMatchObject({
        actor_id: moderator.id,
        target_type: 'message',
        details: { channel_id: channel.id, sender_id: bob.id, seq: message.seq },
      });
    });

    it('a plain member deleting another’s message is 403 and nothing changes; an outsider gets 404', async () => {
      const [alice, bob, outsider] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const message = await send(app(), alice, { channel_id: channel.id, content: 'the owner speaks' });
      const before = await state(alice, channel.id);
      const events = recordEvents(app());
      expectError(await call(app(), bob, 'DELETE', `/messages/${message.id}`), 403, 'FORBIDDEN');
      expectError(await call(app(), outsider, 'DELETE', `/messages/${message.id}`), 404, 'MESSAGE_NOT_FOUND');
      expectValidation(await call(app(), alice, 'DELETE', '/messages/123'), 'messageId');
      await expectNothingStored(alice, channel.id, before, events);
    });

    it('hiding removes a message from my history only', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const first = await send(app(), alice, { channel_id: channel.id, content: 'spoiler' });
      const second = await send(app(), alice, { channel_id: channel.id, content: 'no spoiler' });

      await ok(call(app(), bob, 'POST', `/messages/${first.id}/hide`), 204);
      expect((await history(bob, channel.id)).messages.map((message) => message.id)).toEqual([second.id]);
      expect((await changes(bob, channel.id)).messages.map((message) => message.id)).toEqual([second.id]);
      expect((await history(alice, channel.id)).messages.map((message) => message.id)).toEqual([
        first.id,
        second.id,
      ]);
      expect((await seedHistory(alice, { channel_id: channel.id })).messages).toHaveLength(2);
      expect((await seedHistory(bob, { channel_id: channel.id })).messages).toHaveLength(1);
    });
  });
});

describe('messages with a 20-character limit', () => {
  const testApp = useTestApp(conversationOverrides({ messages: { max_length: 20 } }));
  const app = () => testApp().app;
  const { state, expectNothingStored } = helpers(app);

  it('accepts 20 characters (after trimming) and refuses 21 with 400, storing nothing', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('len'), kind: 'group' });
    const twenty = 'x'.repeat(20);
    expect((await send(app(), alice, { channel_id: channel.id, content: `   ${twenty}   ` })).content).toBe(
      twenty,
    );
    const before = await state(alice, channel.id);
    const events = recordEvents(app());
    expectValidation(
      await call(app(), alice, 'POST', '/messages', { channel_id: channel.id, content: 'y'.repeat(21) }),
      'content',
    );
    await expectNothingStored(alice, channel.id, before, events);
  });

  it('an edit beyond the limit is 400 and leaves the message as it was', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('len'), kind: 'group' });
    const message = await send(app(), alice, { channel_id: channel.id, content: 'short' });
    const before = await state(alice, channel.id);
    const events = recordEvents(app());
    expectValidation(
      await call(app(), alice, 'PATCH', `/messages/${message.id}`, { content: 'z'.repeat(21) }),
      'content',
    );
    await expectNothingStored(alice, channel.id, before, events);
  });
});

describe('messages with a one-second edit window', () => {
  const testApp = useTestApp(conversationOverrides({ messages: { edit_window_s: 1 } }));
  const app = () => testApp().app;
  const { state, expectNothingStored } = helpers(app);

  it('an edit after the window is 409 EDIT_WINDOW_CLOSED and the message stays as sent', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('win'), kind: 'group' });
    const message = await send(app(), alice, { channel_id: channel.id, content: 'quick' });
    await sleep(1_500);
    const before = await state(alice, channel.id);
    const events = recordEvents(app());
    expectError(
      await call(app(), alice, 'PATCH', `/messages/${message.id}`, { content: 'too late' }),
      409,
      'EDIT_WINDOW_CLOSED',
    );
    expect(before.messages[0]).toMatchObject({ content: 'quick', edited_at: null });
    await expectNothingStored(alice, channel.id, before, events);
  });
});

describe('messages with a send limit of 3 per minute', () => {
  const testApp = useTestApp(conversationOverrides({ rate_limit: { messages_per_minute: 3 } }));
  const app = () => testApp().app;
  const { state, expectNothingStored } = helpers(app);

  it('the 4th send within a minute is 429 RATE_LIMITED with retry_after; nothing is stored', async () => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const channel = await createChannel(app(), alice, {
      name: unique('rl'),
      kind: 'group',
      members: [bob.id],
    });
    for (let i = 1; i <= 3; i += 1) await send(app(), alice, { channel_id: channel.id, content: `ok ${i}` });
    const before = await state(alice, channel.id);
    const events = recordEvents(app());

    const limited: InjectResponse = await call(app(), alice, 'POST', '/messages', {
      channel_id: channel.id,
      content: 'one too many',
    });
    const body = expectError(limited, 429, 'RATE_LIMITED');
    expect(body.retry_after).toEqual(expect.any(Number));
    expect(body.retry_after as number).toBeGreaterThan(0);
    expect(body.retry_after as number).toBeLessThanOrEqual(60);
    expect(limited.headers['retry-after']).toBe(String(body.retry_after));
    expect(before.messages.map((message) => message.content)).toEqual(['ok 1', 'ok 2', 'ok 3']);
    // Another member has their own allowance; their send takes the next seq.
    await expectNothingStored(alice, channel.id, before, events, bob);
  });

  it('refused sends do not use up the allowance: after them, the sender still gets all 3 messages', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('rl'), kind: 'group' });
    await send(app(), alice, { channel_id: channel.id, content: 'ok 1' });
    const refused = [
      { body: { channel_id: channel.id, content: '   ' }, status: 400, code: 'VALIDATION_FAILED' },
      {
        body: { channel_id: channel.id, content: 'reply', reply_to: `${channel.id}-99` },
        status: 400,
        code: 'INVALID_REPLY_TO',
      },
      {
        body: { channel_id: channel.id, content: 'file', attachments: ['ffffffffffffffffffffffff'] },
        status: 404,
        code: 'FILE_NOT_FOUND',
      },
    ];
    for (const { body, status, code } of refused)
      expectError(await call(app(), alice, 'POST', '/messages', body), status, code);
    expect((await send(app(), alice, { channel_id: channel.id, content: 'ok 2' })).seq).toBe(2);
    expect((await send(app(), alice, { channel_id: channel.id, content: 'ok 3' })).seq).toBe(3);
    expectError(
      await call(app(), alice, 'POST', '/messages', { channel_id: channel.id, content: 'ok 4' }),
      429,
      'RATE_LIMITED',
    );
  });
});
