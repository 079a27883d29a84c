// Read positions and unread counts: POST /channels/:id/read moves a member's position forward only, GET
// /channels reports unread_count and last_seq per member, senders have read their own messages, people who
// join later start with nothing unread, and reading publishes read_receipt and unread_update.
import { describe, expect, it } from 'vitest';
import type { PublicChannel } from '../../src/services/channels.js';
import { useTestApp } from '../helper.js';
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

interface ReadResult {
  channel_id: string;
  last_read_seq: number;
  unread_count: number;
}

describe('read state', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  /** The channel as it appears in `who`'s GET /channels. */
  const listed = async (who: Person, channelId: string): Promise<PublicChannel> => {
    const body = await ok<{ channels: PublicChannel[] }>(call(app(), who, 'GET', '/channels'));
    const channel = body.channels.find((entry) => entry.id === channelId);
    expect(channel, `${channelId} is not in the channel list`).toBeDefined();
    return channel!;
  };

  const read = (who: Person | undefined, channelId: string, body: unknown) =>
    call(app(), who, 'POST', `/channels/${channelId}/read`, body);

  /** Alice (owner) and Bob in a fresh group where Alice has sent `count` messages. */
  const groupWithMessages = async (count: number) => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const channel = await createChannel(app(), alice, {
      name: unique('rs'),
      kind: 'group',
      members: [bob.id],
    });
    for (let i = 1; i <= count; i += 1)
      await send(app(), alice, { channel_id: channel.id, content: `note ${i}` });
    return { alice, bob, channel };
  };

  it('counts unread messages per member; the sender has read their own', async () => {
    const { alice, bob, channel } = await groupWithMessages(3);

    expect(await listed(bob, channel.id)).toMatchObject({
      last_seq: 3,
      unread_count: 3,
      membership: { last_read_seq: 0 },
    });
    expect(await listed(alice, channel.id)).toMatchObject({
      last_seq: 3,
      unread_count: 0,
      membership: { last_read_seq: 3 },
    });
    expect(await ok(call(app(), bob, 'GET', `/channels/${channel.id}`))).toMatchObject({
      last_seq: 3,
      unread_count: 3,
    });
  });

  it('marking read up to a seq leaves the rest unread', async () => {
    const { bob, channel } = await groupWithMessages(3);
    expect(await ok<ReadResult>(read(bob, channel.id, { seq: 2 }))).toEqual({
      channel_id: channel.id,
      last_read_seq: 2,
      unread_count: 1,
    });
    expect(await listed(bob, channel.id)).toMatchObject({
      last_seq: 3,
      unread_count: 1,
      membership: { last_read_seq: 2 },
    });
    expect(await ok<ReadResult>(read(bob, channel.name, { seq: 3 }))).toEqual({
      channel_id: channel.id,
      last_read_seq: 3,
      unread_count: 0,
    });
    expect(await listed(bob, channel.id)).toMatchObject({
      unread_count: 0,
      membership: { last_read_seq: 3 },
    });
  });

  it('reading backwards does not move the read position back', async () => {
    const { bob, channel } = await groupWithMessages(3);
    await ok(read(bob, channel.id, { seq: 2 }));
    expect(await ok<ReadResult>(read(bob, channel.id, { seq: 1 }))).toEqual({
      channel_id: channel.id,
      last_read_seq: 2,
      unread_count: 1,
    });
    expect(await ok<ReadResult>(read(bob, channel.id, { seq: 0 }))).toMatchObject({ last_read_seq: 2 });
    expect(await listed(bob, channel.id)).toMatchObject({
      unread_count: 1,
      membership: { last_read_seq: 2 },
    });
  });

  it('sending a message marks everything before it read for the sender', async () => {
    const { alice, bob, channel } = await groupWithMessages(3);
    await send(app(), bob, { channel_id: channel.id, content: 'caught up' });
    expect(await listed(bob, channel.id)).toMatchObject({
      last_seq: 4,
      unread_count: 0,
      membership: { last_read_seq: 4 },
    });
    expect(await listed(alice, channel.id)).toMatchObject({ last_seq: 4, unread_count: 1 });
  });

  it('refuses a seq beyond the last message, and bad bodies, leaving the position alone', async () => {
    const { bob, channel } = await groupWithMessages(3);
    await ok(read(bob, channel.id, { seq: 1 }));

    expectValidation(await read(bob, channel.id, { seq: 4 }), 'seq');
    expectValidation(await read(bob, channel.id, { seq: 1_000_000 }), 'seq');
    expectValidation(await read(bob, channel.id, { seq: -1 }), 'seq');
    expectValidation(await read(bob, channel.id, { seq: 2.5 }), 'seq');
    expectValidation(await read(bob, channel.id, { seq: '2' }), 'seq');
    expectValidation(await read(bob, channel.id, {}), 'seq');
    expectValidation(await read(bob, channel.id, { seq: 2, all: true }), 'all');
    expectError(await read(undefined, channel.id, { seq: 2 }), 401, 'UNAUTHORIZED');
    expectError(await read(bob, unique('missing'), { seq: 1 }), 404, 'CHANNEL_NOT_FOUND');

    expect(await listed(bob, channel.id)).toMatchObject({
      unread_count: 2,
      membership: { last_read_seq: 1 },
    });
  });

  it('non-members cannot mark read: 404 for a group they cannot see, 403 for a visible public channel', async () => {
    const { channel } = await groupWithMessages(1);
    const [outsider, moderator] = await Promise.all([person(app()), person(app(), { roles: ['moderator'] })]);
    expectError(await read(outsider, channel.id, { seq: 1 }), 404, 'CHANNEL_NOT_FOUND');

    const open = await createChannel(app(), moderator, { name: unique('open'), kind: 'public' });
    await send(app(), moderator, { channel_id: open.id, content: 'hello' });
    expectError(await read(outsider, open.id, { seq: 1 }), 403, 'NOT_CHANNEL_MEMBER');
    expect(await ok(call(app(), outsider, 'GET', `/channels/${open.id}`))).toMatchObject({
      membership: null,
      unread_count: 0,
    });
  });

  it('publishes read_receipt to the channel and unread_update to the reader only', async () => {
    const { bob, channel } = await groupWithMessages(3);
    const recorder = recordEvents(app());
    try {
      await ok(read(bob, channel.id, { seq: 2 }));
      const receipts = recorder
        .ofType('read_receipt')
        .filter((entry) => entry.event.channel_id === channel.id);
      expect(receipts).toEqual([
        {
          event: { type: 'read_receipt', channel_id: channel.id, user_id: bob.id, seq: 2 },
          audience: { kind: 'channel', channelId: channel.id },
        },
      ]);
      const updates = recorder
        .ofType('unread_update')
        .filter((entry) => entry.event.channel_id === channel.id);
      expect(updates).toEqual([
        {
          event: { type: 'unread_update', channel_id: channel.id, unread_count: 1 },
          audience: { kind: 'users', userIds: [bob.id] },
        },
      ]);

      // Reading backwards or beyond the end tells the channel nothing new.
      await ok(read(bob, channel.id, { seq: 1 }));
      expectValidation(await read(bob, channel.id, { seq: 9 }), 'seq');
      expect(
        recorder.ofType('read_receipt').filter((entry) => entry.event.channel_id === channel.id),
      ).toHaveLength(1);
      for (const update of recorder.ofType('unread_update')) {
        expect(update.audience).toEqual({ kind: 'users', userIds: [bob.id] });
        expect(update.event).toMatchObject({ channel_id: channel.id, unread_count: 1 });
      }
    } finally {
      recorder.stop();
    }
  });

  it('a member added later starts with nothing unread; later messages count', async () => {
    const { alice, channel } = await groupWithMessages(3);
    const carol = await person(app());
    await ok(call(app(), alice, 'POST', `/channels/${channel.id}/members`, { members: [carol.id] }));
    expect(await listed(carol, channel.id)).toMatchObject({
      last_seq: 3,
      unread_count: 0,
      membership: { last_read_seq: 3 },
    });
    const history = await ok<{ messages: unknown[] }>(
      call(app(), carol, 'GET', `/channels/${channel.id}/messages`),
    );
    expect(history.messages).toHaveLength(3);

    await send(app(), alice, { channel_id: channel.id, content: 'welcome carol' });
    expect(await listed(carol, channel.id)).toMatchObject({ last_seq: 4, unread_count: 1 });
  });

  it('joining a public channel later starts with nothing unread', async () => {
    const [moderator, bob] = await Promise.all([person(app(), { roles: ['moderator'] }), person(app())]);
    const open = await createChannel(app(), moderator, { name: unique('open'), kind: 'public' });
    await send(app(), moderator, { channel_id: open.id, content: 'one' });
    await send(app(), moderator, { channel_id: open.id, content: 'two' });

    const joined = await ok<PublicChannel>(call(app(), bob, 'POST', `/channels/${open.id}/join`));
    expect(joined).toMatchObject({ last_seq: 2, unread_count: 0, membership: { last_read_seq: 2 } });
    expect(await listed(bob, open.id)).toMatchObject({ unread_count: 0 });

    await send(app(), moderator, { channel_id: open.id, content: 'three' });
    expect(await listed(bob, open.id)).toMatchObject({ last_seq: 3, unread_count: 1 });
  });

  it('a direct message shows as unread for the recipient until read', async () => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const message = await send(app(), alice, { recipient_id: bob.id, content: 'got a minute?' });
    expect(await listed(bob, message.channel_id)).toMatchObject({
      kind: 'direct',
      last_seq: 1,
      unread_count: 1,
    });
    expect(await listed(alice, message.channel_id)).toMatchObject({ unread_count: 0 });
    await ok(read(bob, message.channel_id, { seq: message.seq }));
    expect(await listed(bob, message.channel_id)).toMatchObject({ unread_count: 0 });
  });
});
