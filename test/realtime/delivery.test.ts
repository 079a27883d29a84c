// Delivery: every event reaches every connection of every member of its channel (the sender's other tabs
// included, the sending connection gets its ack instead), in seq order, and nobody else; membership
// changes take effect at once.
import { describe, expect, it } from 'vitest';
import { call, createChannel, ok, person, send, type Person } from '../conversations/fixtures.js';
import { connect, type Frame, type TestSocket } from './client.js';
import { useListeningApp } from './fixtures.js';

const listening = useListeningApp();

/** Lets frames in flight arrive, then proves `socket` got none of `type` matching. */
async function expectNone(socket: TestSocket, type: string, match: (frame: Frame) => boolean = () => true) {
  // A ping round trip on the same socket: anything sent to it before the pong has arrived by then.
  await socket.request({ type: 'ping' });
  expect(socket.ofType(type).filter(match)).toEqual([]);
}

const about = (messageId: string) => (frame: Frame) =>
  frame.id === messageId || frame.message_id === messageId;

async function group(owner: Person, members: Person[]) {
  return createChannel(listening().app, owner, {
    name: `g-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`,
    kind: 'group',
    members: members.map((m) => m.id),
  });
}

describe('channel delivery', () => {
  it('reaches every member connection and the sender’s other tabs, never outsiders or the sending tab', async () => {
    const { port, app } = listening();
    const [alice, bob, carol] = [await person(app), await person(app), await person(app)];
    const channel = await group(alice, [bob]);
    const aliceTab1 = await connect(port, alice);
    const aliceTab2 = await connect(port, alice);
    const bobSocket = await connect(port, bob);
    const carolSocket = await connect(port, carol);

    const ack = await aliceTab1.request({
      type: 'chat_message',
      channel_id: channel.id,
      content: 'hello team',
    });
    const id = (ack.message as { id: string }).id;
    for (const socket of [aliceTab2, bobSocket]) {
      const event = await socket.waitForType('chat_message', about(id));
      expect(event).toMatchObject({
        content: 'hello team',
        sender_id: alice.id,
        channel_id: channel.id,
        seq: 1,
      });
      expect(event).toEqual({ type: 'chat_message', ...(ack.message as object) });
    }
    await expectNone(aliceTab1, 'chat_message', about(id));
    await expectNone(carolSocket, 'chat_message');

    // A REST send reaches every tab of the other member.
    const fromBob = await send(app, bob, { channel_id: channel.id, content: 'from rest' });
    await aliceTab1.waitForType('chat_message', about(fromBob.id));
    await aliceTab2.waitForType('chat_message', about(fromBob.id));
    await expectNone(carolSocket, 'chat_message');
    await Promise.all([aliceTab1, aliceTab2, bobSocket, carolSocket].map((s) => s.close()));
  });

  it('sends the message back to the sending tab when its frame had no id (no ack to carry it)', async () => {
    const { port, app } = listening();
    const [alice, bob] = [await person(app), await person(app)];
    const channel = await group(alice, [bob]);
    const tab = await connect(port, alice);
    tab.send({ type: 'chat_message', channel_id: channel.id, content: 'fire and forget' });
    const echoed = await tab.waitForType('chat_message');
    expect(echoed).toMatchObject({ content: 'fire and forget', sender_id: alice.id, channel_id: channel.id });
    expect(tab.ofType('ack')).toEqual([]);
    await tab.close();
  });

  it('delivers direct messages to the two people only', async () => {
    const { port, app } = listening();
    const [alice, bob, carol] = [await person(app), await person(app), await person(app)];
    const aliceOther = await connect(port, alice);
    const bobSocket = await connect(port, bob);
    const carolSocket = await connect(port, carol);
    // The first message creates the conversation: the recipient's membership is known at once.
    const first = await send(app, alice, { recipient_id: bob.id, content: 'first dm' });
    const event = await bobSocket.waitForType('personal_message', about(first.id));
    expect(event).toMatchObject({ recipient_id: bob.id, sender_id: alice.id, channel_kind: 'direct' });
    await aliceOther.waitForType('personal_message', about(first.id));
    await expectNone(carolSocket, 'personal_message');
    await Promise.all([aliceOther, bobSocket, carolSocket].map((s) => s.close()));
  });

  it('keeps seq order per channel under concurrent sends', async () => {
    const { port, app } = listening();
    const [alice, bob] = [await person(app), await person(app)];
    const channel = await group(alice, [bob]);
    const watcher = await connect(port, alice);
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => send(app, bob, { channel_id: channel.id, content: `m${i}` })),
    );
    await watcher.waitFor(() => watcher.ofType('chat_message').length === 30);
    const seqs = watcher.ofType('chat_message').map((frame) => frame.seq as number);
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await watcher.close();
  });

  it('follows membership changes at once: added members receive, removed ones stop', async () => {
    const { port, app } = listening();
    const [alice, bob, carol] = [await person(app), await person(app), await person(app)];
    const channel = await group(alice, [bob]);
    const bobSocket = await connect(port, bob);
    const carolSocket = await connect(port, carol);
    await ok(call(app, alice, 'POST', `/channels/${channel.id}/members`, { members: [carol.id] }));
    const toCarol = await send(app, alice, { channel_id: channel.id, content: 'welcome carol' });
    await carolSocket.waitForType('chat_message', about(toCarol.id));
    await ok(call(app, alice, 'DELETE', `/channels/${channel.id}/members/${bob.id}`), 204);
    const afterBob = await send(app, alice, { channel_id: channel.id, content: 'bob has left' });
    await carolSocket.waitForType('chat_message', about(afterBob.id));
    await expectNone(bobSocket, 'chat_message', about(afterBob.id));

    // Joining a public channel works the same way.
    const moderator = await person(app, { roles: ['moderator'] });
    const open = await createChannel(app, moderator, { name: `open-${Date.now()}`, kind: 'public' });
    await ok(call(app, bob, 'POST', `/channels/${open.id}/join`));
    const hello = await send(app, moderator, { channel_id: open.id, content: 'hi joiners' });
    await bobSocket.waitForType('chat_message', about(hello.id));
    await Promise.all([bobSocket.close(), carolSocket.close()]);
  });
});

describe('other events', () => {
  it('sends edits, deletes, reactions, receipts and unread counts to the right connections', async () => {
    const { port, app } = listening();
    const [alice, bob, carol] = [await person(app), await person(app), await person(app)];
    const channel = await group(alice, [bob]);
    const aliceSocket = await connect(port, alice);
    const bobSocket = await connect(port, bob);
    const carolSocket = await connect(port, carol);
    const message = await send(app, alice, { channel_id: channel.id, content: 'original' });

    await ok(call(app, alice, 'PATCH', `/messages/${message.id}`, { content: 'edited' }));
    const edit = await bobSocket.waitForType(
      'message_update',
      (f) => f.id === message.id && f.content === 'edited',
    );
    expect(edit.edited_at).toBeTruthy();

    await ok(call(app, bob, 'PUT', `/messages/${message.id}/reactions/${encodeURIComponent('🔥')}`));
    const reaction = await aliceSocket.waitForType('reaction_update', about(message.id));
    expect(reaction).toMatchObject({
      channel_id: channel.id,
      reactions: [{ reaction_type: '🔥', count: 1, user_ids: [bob.id] }],
    });

    await ok(call(app, bob, 'POST', `/channels/${channel.id}/read`, { seq: message.seq }));
    const receipt = await aliceSocket.waitForType('read_receipt', (f) => f.user_id === bob.id);
    expect(receipt).toMatchObject({ channel_id: channel.id, seq: message.seq });
    const unread = await bobSocket.waitForType('unread_update', (f) => f.channel_id === channel.id);
    expect(unread.unread_count).toBe(0);
    await expectNone(aliceSocket, 'unread_update');

    await ok(call(app, alice, 'DELETE', `/messages/${message.id}`));
    const tombstone = await bobSocket.waitForType(
      'message_update',
      (f) => f.id === message.id && f.deleted === true,
    );
    expect(tombstone).toMatchObject({ content: '', seq: message.seq });

    for (const type of ['message_update', 'reaction_update', 'read_receipt'])
      await expectNone(carolSocket, type);
    await Promise.all([aliceSocket, bobSocket, carolSocket].map((s) => s.close()));
  });

  it('sends mention notifications to the mentioned member only, and announcements to everyone', async () => {
    const { port, app } = listening();
    const [alice, bob, carol] = [await person(app), await person(app), await person(app)];
    const channel = await group(alice, [bob, carol]);
    const bobSocket = await connect(port, bob);
    const carolSocket = await connect(port, carol);
    const mention = await send(app, alice, { channel_id: channel.id, content: `ping @${bob.email}` });
    const notification = await bobSocket.waitForType('notification');
    expect(JSON.stringify(notification)).toContain(mention.id);
    await expectNone(carolSocket, 'notification');

    const admin = await person(app, { roles: ['admin'] });
    await ok(
      call(app, admin, 'POST', '/announcements', { title: 'Office closed', content: 'Closed on Friday' }),
      201,
    );
    for (const socket of [bobSocket, carolSocket]) {
      const announcement = await socket.waitForType('new_announcement');
      expect(announcement.data).toMatchObject({ title: 'Office closed' });
    }
    await Promise.all([bobSocket.close(), carolSocket.close()]);
  });
});
