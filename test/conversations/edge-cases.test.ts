// Cases found in review: a client_id shaped like a message id, a retry after an edit, excerpts after an
// edit, a direct message to an account disabled after the conversation began.
import { describe, expect, it } from 'vitest';
import { ADMIN_EMAIL, ADMIN_PASSWORD, bearer } from '../identity/fixtures.js';
import { useTestApp } from '../helper.js';
import {
  call,
  conversationOverrides,
  createChannel,
  expectError,
  ok,
  person,
  send,
  unique,
} from './fixtures.js';

describe('conversation edge cases', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  it('a client_id shaped like the next message id does not get in the way of the next send', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('ids'), kind: 'group' });
    const first = await send(app(), alice, { channel_id: channel.id, content: 'one' });
    const crafted = await send(app(), alice, {
      channel_id: channel.id,
      content: 'crafted',
      client_id: `${channel.id}-${first.seq + 2}`,
    });
    const next = await send(app(), alice, { channel_id: channel.id, content: 'three' });
    expect([first.seq, crafted.seq, next.seq]).toEqual([1, 2, 3]);
  });

  it('a retry of a send that was edited since returns the message, not a conflict', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('retry'), kind: 'group' });
    const sent = await send(app(), alice, {
      channel_id: channel.id,
      content: 'typo',
      client_id: 'edit-then-retry',
    });
    await ok(call(app(), alice, 'PATCH', `/messages/${sent.id}`, { content: 'fixed' }));
    const retry = await send(
      app(),
      alice,
      { channel_id: channel.id, content: 'typo', client_id: 'edit-then-retry' },
      200,
    );
    expect(retry).toMatchObject({ id: sent.id, content: 'fixed' });
  });

  it('an edit updates the excerpt of the notifications the message left', async () => {
    const alice = await person(app());
    const bob = await person(app());
    const channel = await createChannel(app(), alice, {
      name: unique('edit'),
      kind: 'group',
      members: [bob.id],
    });
    const sent = await send(app(), alice, {
      channel_id: channel.id,
      content: `@${bob.email} the code is 1234`,
    });
    await ok(
      call(app(), alice, 'PATCH', `/messages/${sent.id}`, { content: `@${bob.email} ask me for the code` }),
    );
    const list = await ok<{ notifications: { message_id: string; excerpt: string }[] }>(
      call(app(), bob, 'GET', '/notifications'),
    );
    const mine = list.notifications.filter((notification) => notification.message_id === sent.id);
    expect(mine.map((notification) => notification.excerpt)).toEqual([`@${bob.email} ask me for the code`]);
  });

  it('no direct message reaches an account disabled after the conversation began', async () => {
    const alice = await person(app());
    const bob = await person(app());
    await send(app(), alice, { recipient_id: bob.id, content: 'hello' });
    const admin = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD },
    });
    const disabled = await app().inject({
      method: 'PATCH',
      url: `/api/v2/admin/users/${bob.id}`,
      headers: bearer(admin.json<{ access_token: string }>().access_token),
      payload: { disabled: true },
    });
    expect(disabled.statusCode, disabled.body).toBe(200);
    expectError(
      await call(app(), alice, 'POST', '/messages', { recipient_id: bob.id, content: 'again' }),
      400,
      'INVALID_RECIPIENT',
    );
  });
});

describe('member roles', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  it('the last owner hands the group over, then may leave; a group never loses its last owner', async () => {
    const alice = await person(app());
    const bob = await person(app());
    const carol = await person(app());
    const channel = await createChannel(app(), alice, {
      name: unique('roles'),
      kind: 'group',
      members: [bob.id, carol.id],
    });
    const url = (who: string) => `/channels/${channel.id}/members/${who}`;
    expectError(await call(app(), alice, 'DELETE', url(alice.id)), 409, 'LAST_OWNER');
    expectError(await call(app(), alice, 'PATCH', url(alice.id), { role: 'member' }), 409, 'LAST_OWNER');
    // A plain member cannot change roles; bad bodies and strangers are refused; nothing changes.
    expectError(await call(app(), bob, 'PATCH', url(bob.id), { role: 'owner' }), 403, 'FORBIDDEN');
    expectError(await call(app(), alice, 'PATCH', url(bob.id), { role: 'admin' }), 400, 'VALIDATION_FAILED');
    expectError(await call(app(), alice, 'PATCH', url(bob.id), {}), 400, 'VALIDATION_FAILED');
    const stranger = await person(app());
    expectError(
      await call(app(), alice, 'PATCH', url(stranger.id), { role: 'owner' }),
      404,
      'USER_NOT_FOUND',
    );

    expect(await ok(call(app(), alice, 'PATCH', url(bob.email), { role: 'owner' }))).toEqual({
      channel_id: channel.id,
      user_id: bob.id,
      role: 'owner',
    });
    await ok(call(app(), alice, 'DELETE', url(alice.id)), 204);
    const members = await ok<{ members: { user_id: string; role: string }[] }>(
      call(app(), bob, 'GET', `/channels/${channel.id}/members`),
    );
    expect(Object.fromEntries(members.members.map((member) => [member.user_id, member.role]))).toEqual({
      [bob.id]: 'owner',
      [carol.id]: 'member',
    });
  });
});

describe('membership reconcile', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  it('puts back general and department memberships a crash left out, and takes out stale ones', async () => {
    const department = unique('Dept');
    const alice = await person(app(), { department });
    const bob = await person(app(), { department });
    const mine = await ok<{ channels: { id: string; name: string; kind: string }[] }>(
      call(app(), alice, 'GET', '/channels'),
    );
    const departmentChannel = mine.channels.find((channel) => channel.kind === 'department')!;
    const general = mine.channels.find((channel) => channel.name === 'general')!;
    // What a crash between a user's creation and their membership writes leaves behind (simulated in the
    // database, since no API can do it), plus a member who is not in the department any more.
    const memberships = app().db.collection('memberships');
    await memberships.deleteOne({ _id: `${general.id}:${alice.id}` as never });
    await memberships.deleteOne({ _id: `${departmentChannel.id}:${alice.id}` as never });
    const outsider = await person(app());
    await memberships.insertOne({
      _id: `${departmentChannel.id}:${outsider.id}`,
      channel_id: departmentChannel.id,
      user_id: outsider.id,
      role: 'member',
      last_read_seq: 0,
      joined_at: new Date(),
      muted: false,
      hidden: false,
    } as never);

    const result = await app().channels.reconcile();
    expect(result.added).toBeGreaterThanOrEqual(2);
    expect(result.removed).toBeGreaterThanOrEqual(1);
    const members = await ok<{ members: { user_id: string }[] }>(
      call(app(), bob, 'GET', `/channels/${departmentChannel.id}/members`),
    );
    expect(members.members.map((member) => member.user_id).sort()).toEqual([alice.id, bob.id].sort());
    const again = await ok<{ channels: { id: string }[] }>(call(app(), alice, 'GET', '/channels'));
    expect(again.channels.map((channel) => channel.id)).toEqual(
      expect.arrayContaining([general.id, departmentChannel.id]),
    );
  });

  const actorOf = (who: { id: string }) => ({ id: who.id, roles: [] });

  it("corrects users' channel lists (what the hub and search read) from the memberships", async () => {
    const alice = await person(app());
    const channels = await app().channels.memberChannelIds(actorOf(alice));
    expect(channels.length).toBeGreaterThanOrEqual(2); // general and the department
    // A crash between a membership write and the list write, simulated: one channel missing, one extra.
    const lists = app().db.collection('user_channels');
    await lists.updateOne(
      { _id: alice.id as never },
      { $set: { channel_ids: [channels[0], 'gone-channel'] } },
    );
    expect(await app().channels.memberChannelIds(actorOf(alice))).toEqual([channels[0], 'gone-channel']);
    const result = await app().channels.reconcile();
    expect(result.lists_corrected).toBeGreaterThanOrEqual(1);
    expect((await app().channels.memberChannelIds(actorOf(alice))).sort()).toEqual([...channels].sort());
    // A user with no list yet (data from before lists existed) gets one from the memberships.
    await lists.deleteOne({ _id: alice.id as never });
    expect((await app().channels.memberChannelIds(actorOf(alice))).sort()).toEqual([...channels].sort());
    expect(await lists.findOne({ _id: alice.id as never })).toMatchObject({ channel_ids: expect.any(Array) });
  });
});
