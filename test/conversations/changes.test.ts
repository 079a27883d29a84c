// The changes feed, GET /channels/:id/changes?since_seq=: what a reconnecting client asks for. Every message
// created, edited, deleted or reacted to after a position comes back once, in change order, as it is now
// (tombstones included), with the new high-water mark; paging walks every change exactly once; a message
// seq is a safe position (never misses anything); and who may read it and which positions are refused.
import { describe, expect, it } from 'vitest';
import type { PublicMessage } from '../../src/services/message-content.js';
import { useTestApp } from '../helper.js';
import {
  call,
  conversationOverrides,
  createChannel,
  expectError,
  expectValidation,
  ok,
  person,
  send,
  unique,
  type Person,
} from './fixtures.js';

interface Changes {
  channel_id: string;
  messages: PublicMessage[];
  last_seq: number;
  has_more: boolean;
}

describe('changes feed', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  const feed = (who: Person, channelId: string, query: Record<string, string | number> = {}) =>
    call(
      app(),
      who,
      'GET',
      `/channels/${channelId}/changes`,
      undefined,
      Object.fromEntries(Object.entries(query).map(([key, value]) => [key, String(value)])),
    );

  const changes = (who: Person, channelId: string, query: Record<string, string | number> = {}) =>
    ok<Changes>(feed(who, channelId, query));

  const history = async (who: Person, channelId: string) =>
    (
      await ok<{ messages: PublicMessage[] }>(
        call(app(), who, 'GET', `/channels/${channelId}/messages`, undefined, { limit: '200' }),
      )
    ).messages;

  const react = (who: Person, messageId: string, reaction: string) =>
    ok(call(app(), who, 'PUT', `/messages/${messageId}/reactions/${encodeURIComponent(reaction)}`));

  const pair = async () => {
    const [alice, bob] = await Promise.all([person(app()), person(app())]);
    const channel = await createChannel(app(), alice, {
      name: unique('chg'),
      kind: 'group',
      members: [bob.id],
    });
    return { alice, bob, channel };
  };

  it('returns each changed message once, in change order, as it is now, with the new high-water mark', async () => {
    const { alice, bob, channel } = await pair();
    const m1 = await send(app(), alice, { channel_id: channel.id, content: 'one' });
    const m2 = await send(app(), bob, { channel_id: channel.id, content: 'two' });
    const m3 = await send(app(), alice, { channel_id: channel.id, content: 'three' });
    const m4 = await send(app(), bob, { channel_id: channel.id, content: 'four' });
    const seen = await changes(bob, channel.id);
    expect(seen.messages.map((message) => message.id)).toEqual([m1.id, m2.id, m3.id, m4.id]);
    expect(seen.last_seq).toBe(m4.change_seq);
    expect(seen.has_more).toBe(false);

    // While bob is away: an edit of m3, a delete of m1, a reaction on m2, another reaction on m3.
    await ok(call(app(), alice, 'PATCH', `/messages/${m3.id}`, { content: 'three, edited' }));
    await ok(call(app(), alice, 'DELETE', `/messages/${m1.id}`));
    await react(alice, m2.id, '👍');
    await react(alice, m3.id, '🎉');

    const caughtUp = await changes(bob, channel.id, { since_seq: seen.last_seq });
    expect(caughtUp.messages.map((message) => message.id)).toEqual([m1.id, m2.id, m3.id]);
    // As they are now, exactly as history shows them.
    const now = new Map((await history(bob, channel.id)).map((message) => [message.id, message]));
    for (const message of caughtUp.messages) expect(message).toEqual(now.get(message.id));
    expect(caughtUp.messages[0]).toMatchObject({ id: m1.id, seq: 1, deleted: true, content: '' });
    expect(caughtUp.messages[1]!.reactions).toEqual([
      { reaction_type: '👍', user_ids: [alice.id], count: 1 },
    ]);
    expect(caughtUp.messages[2]).toMatchObject({ content: 'three, edited', edited_at: expect.any(String) });
    expect(caughtUp.messages[2]!.reactions).toHaveLength(1);
    const positions = caughtUp.messages.map((message) => message.change_seq);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(caughtUp.last_seq).toBe(positions.at(-1));
    expect(caughtUp.last_seq).toBeGreaterThan(seen.last_seq);
    expect(caughtUp.has_more).toBe(false);

    // From the start, every message once, in change order.
    const everything = await changes(bob, channel.id, { since_seq: 0 });
    expect(everything.messages.map((message) => message.id)).toEqual([m4.id, m1.id, m2.id, m3.id]);
    expect(everything.last_seq).toBe(caughtUp.last_seq);
  });

  it('pages with limit and has_more, walking every change exactly once', async () => {
    const { alice, bob, channel } = await pair();
    const sent: PublicMessage[] = [];
    for (let i = 1; i <= 7; i += 1)
      sent.push(await send(app(), i % 2 ? alice : bob, { channel_id: channel.id, content: `p${i}` }));
    await ok(call(app(), alice, 'PATCH', `/messages/${sent[0]!.id}`, { content: 'p1 again' }));
    await react(bob, sent[2]!.id, '👀');
    await ok(call(app(), bob, 'DELETE', `/messages/${sent[5]!.id}`));
    const expected = (await changes(alice, channel.id, { limit: 200 })).messages;
    expect(expected).toHaveLength(7);

    const walked: PublicMessage[] = [];
    let since = 0;
    let pages = 0;
    for (;;) {
      const page = await changes(alice, channel.id, { since_seq: since, limit: 3 });
      pages += 1;
      expect(page.messages.length).toBeLessThanOrEqual(3);
      walked.push(...page.messages);
      expect(page.last_seq).toBeGreaterThanOrEqual(since);
      since = page.last_seq;
      if (!page.has_more) break;
      expect(page.messages).toHaveLength(3);
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBe(3);
    expect(walked).toEqual(expected);
    expect(new Set(walked.map((message) => message.id)).size).toBe(7);
    expect(since).toBe(expected.at(-1)!.change_seq);
  });

  it('since_seq at the high-water mark returns nothing new and the same mark; one beyond it is corrected', async () => {
    const { alice, bob, channel } = await pair();
    await send(app(), alice, { channel_id: channel.id, content: 'a' });
    const last = await send(app(), alice, { channel_id: channel.id, content: 'b' });
    await react(bob, last.id, '✅');
    const mark = (await changes(bob, channel.id)).last_seq;

    expect(await changes(bob, channel.id, { since_seq: mark })).toEqual({
      channel_id: channel.id,
      messages: [],
      last_seq: mark,
      has_more: false,
    });
    // A position from elsewhere (another channel, a wiped client) is brought back to this channel's mark.
    expect(await changes(bob, channel.id, { since_seq: mark + 1000 })).toMatchObject({
      messages: [],
      last_seq: mark,
    });

    const next = await send(app(), alice, { channel_id: channel.id, content: 'c' });
    const after = await changes(bob, channel.id, { since_seq: mark });
    expect(after.messages.map((message) => message.id)).toEqual([next.id]);
    expect(after.last_seq).toBe(next.change_seq);
  });

  it('an empty channel has nothing and mark 0; since_seq defaults to 0 and the channel may be named', async () => {
    const { alice, bob, channel } = await pair();
    expect(await changes(alice, channel.id)).toEqual({
      channel_id: channel.id,
      messages: [],
      last_seq: 0,
      has_more: false,
    });
    const message = await send(app(), bob, { channel_id: channel.id, content: 'first' });
    const byName = await changes(alice, channel.name);
    expect(byName.channel_id).toBe(channel.id);
    expect(byName.messages).toEqual([message]);
  });

  it('a message seq passed as since_seq returns a superset: nothing after that message is missed', async () => {
    const { alice, bob, channel } = await pair();
    const m1 = await send(app(), alice, { channel_id: channel.id, content: 'm1' });
    await send(app(), alice, { channel_id: channel.id, content: 'm2' });
    // Reactions move the change positions ahead of the message seqs.
    for (const reaction of ['1️⃣', '2️⃣', '3️⃣']) await react(bob, m1.id, reaction);
    const m3 = await send(app(), bob, { channel_id: channel.id, content: 'm3' });
    const m4 = await send(app(), alice, { channel_id: channel.id, content: 'm4' });
    await ok(call(app(), alice, 'PATCH', `/messages/${m4.id}`, { content: 'm4 edited' }));
    const m5 = await send(app(), bob, { channel_id: channel.id, content: 'm5' });
    expect(m3.change_seq).toBeGreaterThan(m3.seq);

    // A client that only kept message seqs and knows up to m3 asks with m3's seq.
    const fromSeq = await changes(alice, channel.id, { since_seq: m3.seq });
    const exact = await changes(alice, channel.id, { since_seq: m3.change_seq });
    const ids = fromSeq.messages.map((message) => message.id);
    expect(exact.messages.map((message) => message.id)).toEqual([m4.id, m5.id]);
    for (const id of [m4.id, m5.id]) expect(ids).toContain(id);
    expect(fromSeq.messages.find((message) => message.id === m4.id)!.content).toBe('m4 edited');
    expect(fromSeq.last_seq).toBe(exact.last_seq);
    expect(fromSeq.messages.length).toBeGreaterThanOrEqual(exact.messages.length);
  });

  it('a non-member gets 404 for a group and 403 for a public channel they did not join', async () => {
    const [moderator, outsider] = await Promise.all([person(app(), { roles: ['moderator'] }), person(app())]);
    const { alice, channel } = await pair();
    await send(app(), alice, { channel_id: channel.id, content: 'private' });
    const open = await createChannel(app(), moderator, { name: unique('pub'), kind: 'public' });
    await send(app(), moderator, { channel_id: open.id, content: 'public' });

    expectError(await feed(outsider, channel.id), 404, 'CHANNEL_NOT_FOUND');
    expectError(await feed(outsider, channel.name), 404, 'CHANNEL_NOT_FOUND');
    expectError(await feed(outsider, 'no-such-channel'), 404, 'CHANNEL_NOT_FOUND');
    expectError(await feed(outsider, open.id), 403, 'NOT_CHANNEL_MEMBER');
    // A moderator can see the group exists but is not a member: no messages either.
    expectError(await feed(moderator, channel.id), 403, 'NOT_CHANNEL_MEMBER');
    expectError(await call(app(), undefined, 'GET', `/channels/${channel.id}/changes`), 401, 'UNAUTHORIZED');
  });

  it('a bad since_seq or limit is 400 VALIDATION_FAILED', async () => {
    const { alice, channel } = await pair();
    await send(app(), alice, { channel_id: channel.id, content: 'x' });
    const before = await changes(alice, channel.id);
    for (const since of ['-1', 'abc', '1.5', '1e400']) {
      expectValidation(await feed(alice, channel.id, { since_seq: since }), 'since_seq');
    }
    for (const limit of ['0', '201', 'ten'])
      expectValidation(await feed(alice, channel.id, { limit }), 'limit');
    expectValidation(await feed(alice, channel.id, { since: '0' }), 'since');
    expect(await changes(alice, channel.id)).toEqual(before);
  });
});
