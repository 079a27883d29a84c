// Mentions and the notifications they leave: "@email", "@first name", "@email local part" and "@channel"
// notify the channel's members who are named (never the sender, never someone outside the channel), each
// with a stored notification and a `notification` event for them alone; then GET /notifications (newest
// first, unread_only, cursor pages, unread_count) and POST /notifications/read (some ids, or all), which
// never touches another user's notifications.
import { describe, expect, it } from 'vitest';
import type { PublicNotification } from '../../src/services/notifications.js';
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
  uniqueEmail,
  type Person,
} from './fixtures.js';

interface Inbox {
  notifications: PublicNotification[];
  unread_count: number;
  next_cursor: string | null;
  has_more: boolean;
}

describe('notifications', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  /** Someone with a first name and an email local part nobody else has. */
  const someone = () =>
    person(app(), { name: `${unique('Fn')} ${unique('Ln')}`, email: uniqueEmail('mail') });

  const firstName = (who: Person) => who.name.split(' ')[0]!;
  const localPart = (who: Person) => who.email.split('@')[0]!;

  const inbox = (who: Person, query?: Record<string, string>) =>
    ok<Inbox>(call(app(), who, 'GET', '/notifications', undefined, query));

  const markRead = (who: Person, body: unknown) => call(app(), who, 'POST', '/notifications/read', body);

  /** Alice (sender) with Bob, Carol and Dave in a group; Olga is not in it. */
  const team = async () => {
    const [alice, bob, carol, dave, olga] = await Promise.all([
      someone(),
      someone(),
      someone(),
      someone(),
      someone(),
    ]);
    const channel = await createChannel(app(), alice!, {
      name: unique('ntf'),
      kind: 'group',
      members: [bob!.id, carol!.id, dave!.id],
    });
    return { alice: alice!, bob: bob!, carol: carol!, dave: dave!, olga: olga!, channel };
  };

  const counts = async (people: Person[]) =>
    Promise.all(people.map(async (who) => (await inbox(who)).notifications.length));

  it('@email notifies that member only: one stored notification and one event, for them', async () => {
    const { alice, bob, carol, dave, olga, channel } = await team();
    const events = recordEvents(app());
    const content = `Hi @${bob.email}, please review`;
    const message = await send(app(), alice, { channel_id: channel.id, content });
    events.stop();

    const bobs = await inbox(bob);
    expect(bobs).toMatchObject({ unread_count: 1, has_more: false, next_cursor: null });
    expect(bobs.notifications).toEqual([
      {
        id: expect.any(String),
        kind: 'mention',
        channel_id: channel.id,
        message_id: message.id,
        seq: message.seq,
        from_user_id: alice.id,
        from_name: alice.name,
        excerpt: content,
        created_at: message.timestamp,
        read_at: null,
      },
    ]);
    expect(await counts([alice, carol, dave, olga])).toEqual([0, 0, 0, 0]);

    const published = events.ofType('notification');
    expect(published).toHaveLength(1);
    expect(published[0]!.audience).toEqual({ kind: 'users', userIds: [bob.id] });
    expect(published[0]!.event).toEqual({ type: 'notification', notification: bobs.notifications[0] });
  });

  it('@first name and @email local part, in any case, notify those members once each', async () => {
    const { alice, bob, carol, dave, olga, channel } = await team();
    const events = recordEvents(app());
    await send(app(), alice, {
      channel_id: channel.id,
      content: `@${firstName(bob).toUpperCase()} and @${localPart(carol)}: lunch? (cc @${bob.email}.)`,
    });
    events.stop();
    expect(await counts([bob, carol, dave, olga, alice])).toEqual([1, 1, 0, 0, 0]);
    const targets = events.ofType('notification').map((entry) => entry.audience);
    expect(targets).toHaveLength(2);
    expect(targets).toEqual(
      expect.arrayContaining([
        { kind: 'users', userIds: [bob.id] },
        { kind: 'users', userIds: [carol.id] },
      ]),
    );
  });

  it('@channel notifies every member but the sender, each with their own event', async () => {
    const { alice, bob, carol, dave, olga, channel } = await team();
    const events = recordEvents(app());
    const message = await send(app(), alice, { channel_id: channel.id, content: 'Release at 5, @channel!' });
    events.stop();
    expect(await counts([bob, carol, dave, alice, olga])).toEqual([1, 1, 1, 0, 0]);
    for (const who of [bob, carol, dave])
      expect((await inbox(who)).notifications[0]).toMatchObject({
        message_id: message.id,
        from_user_id: alice.id,
      });
    const published = events.ofType('notification');
    expect(published.map((entry) => entry.audience)).toEqual(
      expect.arrayContaining([bob, carol, dave].map((who) => ({ kind: 'users', userIds: [who.id] }))),
    );
    expect(published).toHaveLength(3);
  });

  it('mentioning someone outside the channel, or yourself, notifies nobody', async () => {
    const { alice, bob, olga, channel } = await team();
    const moderator = await person(app(), { roles: ['moderator'] });
    const open = await createChannel(app(), moderator, { name: unique('pub'), kind: 'public' });
    const events = recordEvents(app());
    await send(app(), alice, {
      channel_id: channel.id,
      content: `@${olga.email} @${firstName(olga)} @${localPart(olga)} @${alice.email} @${firstName(alice)}`,
    });
    // Olga can see the public channel but has not joined it.
    await send(app(), moderator, { channel_id: open.id, content: `welcome @${olga.email}` });
    // An email address in running text is not a mention.
    await send(app(), alice, { channel_id: channel.id, content: `write to ${bob.email} instead` });
    events.stop();
    expect(events.ofType('notification')).toEqual([]);
    expect(await counts([olga, alice, bob, moderator])).toEqual([0, 0, 0, 0]);
  });

  it('a long message leaves an excerpt of 300 characters', async () => {
    const { alice, bob, channel } = await team();
    const content = `@${bob.email} ${'long text '.repeat(60)}`.trim();
    await send(app(), alice, { channel_id: channel.id, content });
    const [notification] = (await inbox(bob)).notifications;
    expect(notification!.excerpt).toHaveLength(300);
    expect(notification!.excerpt).toBe(`${content.slice(0, 299)}…`);
  });

  it('deleting a message for everyone takes its text out of the notifications it left', async () => {
    const { alice, bob, carol, channel } = await team();
    const secret = `the door code is ${unique('code')}`;
    const message = await send(app(), alice, { channel_id: channel.id, content: `@channel ${secret}` });
    expect((await inbox(bob)).notifications[0]!.excerpt).toContain(secret);
    await ok(call(app(), alice, 'DELETE', `/messages/${message.id}`));
    for (const who of [bob, carol]) {
      const left = (await inbox(who)).notifications.filter((entry) => entry.message_id === message.id);
      for (const entry of left) expect(entry.excerpt).not.toContain(secret);
    }
  });

  it('GET /notifications: newest first, cursor pages, unread_only, and the unread count', async () => {
    const { alice, bob, channel } = await team();
    const sent = [];
    for (let i = 1; i <= 5; i += 1)
      sent.push(
        await send(app(), alice, { channel_id: channel.id, content: `@${firstName(bob)} ping ${i}` }),
      );
    const all = (await inbox(bob)).notifications;
    expect(all.map((entry) => entry.message_id)).toEqual(sent.map((message) => message.id).reverse());
    // The two oldest are read.
    const read = await ok(markRead(bob, { ids: all.slice(3).map((entry) => entry.id) }));
    expect(read).toEqual({ updated: 2, unread_count: 3 });

    const walked: PublicNotification[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Inbox = await inbox(bob, { limit: '2', ...(cursor ? { cursor } : {}) });
      pages += 1;
      expect(page.unread_count).toBe(3);
      expect(page.has_more).toBe(page.next_cursor !== null);
      walked.push(...page.notifications);
      cursor = page.next_cursor;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(walked.map((entry) => entry.id)).toEqual(all.map((entry) => entry.id));

    const unread = await inbox(bob, { unread_only: 'true' });
    expect(unread.notifications.map((entry) => entry.id)).toEqual(all.slice(0, 3).map((entry) => entry.id));
    expect(unread.notifications.every((entry) => entry.read_at === null)).toBe(true);
    const unreadPage = await inbox(bob, { unread_only: 'true', limit: '2' });
    expect(unreadPage).toMatchObject({ has_more: true, unread_count: 3 });
    const rest = await inbox(bob, { unread_only: 'true', limit: '2', cursor: unreadPage.next_cursor! });
    expect(rest.notifications.map((entry) => entry.id)).toEqual([all[2]!.id]);
    expect(rest).toMatchObject({ has_more: false, next_cursor: null });
  });

  it('POST /notifications/read marks the listed ones, or all with {}; again it changes nothing', async () => {
    const { alice, bob, channel } = await team();
    for (let i = 1; i <= 3; i += 1)
      await send(app(), alice, { channel_id: channel.id, content: `@${localPart(bob)} item ${i}` });
    const [newest, middle, oldest] = (await inbox(bob)).notifications;

    expect(await ok(markRead(bob, { ids: [middle!.id] }))).toEqual({ updated: 1, unread_count: 2 });
    expect(await ok(markRead(bob, { ids: [middle!.id] }))).toEqual({ updated: 0, unread_count: 2 });
    const afterOne = (await inbox(bob)).notifications;
    expect(afterOne.find((entry) => entry.id === middle!.id)!.read_at).toEqual(expect.any(String));
    expect(afterOne.filter((entry) => entry.read_at === null).map((entry) => entry.id)).toEqual([
      newest!.id,
      oldest!.id,
    ]);

    expect(await ok(markRead(bob, {}))).toEqual({ updated: 2, unread_count: 0 });
    expect(await ok(markRead(bob, {}))).toEqual({ updated: 0, unread_count: 0 });
    const afterAll = await inbox(bob);
    expect(afterAll.unread_count).toBe(0);
    expect(afterAll.notifications.every((entry) => entry.read_at !== null)).toBe(true);
    expect((await inbox(bob, { unread_only: 'true' })).notifications).toEqual([]);
    // A read one keeps the time it was first read.
    expect(afterAll.notifications.find((entry) => entry.id === middle!.id)!.read_at).toBe(
      afterOne.find((entry) => entry.id === middle!.id)!.read_at,
    );
  });

  it('bad ids are 400 VALIDATION_FAILED and mark nothing', async () => {
    const { alice, bob, channel } = await team();
    await send(app(), alice, { channel_id: channel.id, content: `@${bob.email} hi` });
    const before = await inbox(bob);
    for (const body of [
      { ids: ['nope'] },
      { ids: [] },
      { ids: 'all' },
      { ids: [42] },
      { ids: [before.notifications[0]!.id, '../x'] },
      { ids: Array.from({ length: 501 }, () => before.notifications[0]!.id) },
      { all: true },
    ]) {
      const response = await markRead(bob, body);
      const field = 'all' in body ? 'all' : 'ids';
      expectValidation(response, field);
    }
    expect(await inbox(bob)).toEqual(before);
    expect(before.unread_count).toBe(1);
  });

  it('another user’s notification ids are never marked', async () => {
    const { alice, bob, carol, channel } = await team();
    await send(app(), alice, { channel_id: channel.id, content: `@${bob.email} and @${carol.email}` });
    const [bobs] = (await inbox(bob)).notifications;
    const [carols] = (await inbox(carol)).notifications;

    expect(await ok(markRead(bob, { ids: [carols!.id] }))).toEqual({ updated: 0, unread_count: 1 });
    expect(await ok(markRead(bob, { ids: [carols!.id, bobs!.id] }))).toEqual({ updated: 1, unread_count: 0 });
    const carolsNow = await inbox(carol);
    expect(carolsNow.unread_count).toBe(1);
    expect(carolsNow.notifications).toEqual([carols]);
    // Nor do they show up in anyone else's list.
    expect((await inbox(bob)).notifications.map((entry) => entry.id)).toEqual([bobs!.id]);
  });

  it('bad list queries are 400; without a session it is 401', async () => {
    const who = await someone();
    expectValidation(await call(app(), who, 'GET', '/notifications', undefined, { cursor: 'abc' }), 'cursor');
    expectValidation(
      await call(app(), who, 'GET', '/notifications', undefined, { unread_only: 'yes' }),
      'unread_only',
    );
    expectValidation(await call(app(), who, 'GET', '/notifications', undefined, { limit: '0' }), 'limit');
    expectValidation(await call(app(), who, 'GET', '/notifications', undefined, { limit: '201' }), 'limit');
    expectError(await call(app(), undefined, 'GET', '/notifications'), 401, 'UNAUTHORIZED');
    expectError(await call(app(), undefined, 'POST', '/notifications/read', {}), 401, 'UNAUTHORIZED');
  });
});
