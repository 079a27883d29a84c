// GET /api/v2/search/messages as its users see it: whole words, case- and accent-insensitive, the last word
// as a prefix; only the channels the caller belongs to now; filters by channel, sender and time; newest
// first with cursor paging; deleted, hidden and edited messages; and every bad input refused with 400.
// Each test uses words of its own (unique tokens), so it never sees another test's messages.
import { describe, expect, it } from 'vitest';
import type { PublicMessage } from '../../src/services/message-content.js';
import { useTestApp } from '../helper.js';
import { sleep } from '../identity/fixtures.js';
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

// Load shedding is tested in test/http/overload.test.ts; here a busy test machine must not shed requests.
const app = useTestApp(conversationOverrides());

interface SearchPage {
  messages: PublicMessage[];
  next_cursor: string | null;
  has_more: boolean;
}

function searchAs(who: Person | undefined, query: Record<string, string>) {
  return call(app().app, who, 'GET', '/search/messages', undefined, query);
}

async function search(who: Person, query: Record<string, string>): Promise<SearchPage> {
  return ok<SearchPage>(searchAs(who, query));
}

async function foundIds(who: Person, query: Record<string, string>): Promise<string[]> {
  return (await search(who, query)).messages.map((message) => message.id);
}

/** A group channel owned by `owner` with `members`. */
async function group(owner: Person, members: Person[] = []) {
  return createChannel(app().app, owner, {
    name: unique('grp'),
    kind: 'group',
    members: members.map((member) => member.id),
  });
}

/** Sends, then waits a little so the next message is stamped with a later time. */
async function sendApart(sender: Person, body: Record<string, unknown>): Promise<PublicMessage> {
  const message = await send(app().app, sender, body);
  await sleep(15);
  return message;
}

/** The same instant written with a +02:00 offset instead of Z. */
function plusTwoHours(timestamp: string): string {
  const shifted = new Date(new Date(timestamp).getTime() + 2 * 3_600_000);
  return shifted.toISOString().replace('Z', '+02:00');
}

describe('search: words', () => {
  it('finds messages by whole words, ignoring case and accents', async () => {
    const alice = await person(app().app);
    const channel = await group(alice);
    const w = unique('w');
    const cafe = await send(app().app, alice, { channel_id: channel.id, content: `Café au lait ${w}` });
    const naive = await send(app().app, alice, {
      channel_id: channel.id,
      content: `NAÏVE Résumé ${w} attached`,
    });

    for (const q of [`cafe ${w}`, `CAFE ${w}`, `${w} café`, `${w} CAFÉ`, `${w} Cafe`]) {
      expect(await foundIds(alice, { q }), q).toEqual([cafe.id]);
    }
    expect(await foundIds(alice, { q: `naive resume ${w}` })).toEqual([naive.id]);
    expect(await foundIds(alice, { q: `${w} RÉSUMÉ` })).toEqual([naive.id]);
    // Both messages carry the token; the newest comes first.
    expect(await foundIds(alice, { q: w.toUpperCase() })).toEqual([naive.id, cafe.id]);
    // Punctuation around words does not matter.
    expect(await foundIds(alice, { q: `"${w}", (café)!` })).toEqual([cafe.id]);
    const page = await search(alice, { q: `cafe ${w}` });
    expect(page.messages[0]).toMatchObject({
      id: cafe.id,
      channel_id: channel.id,
      sender_id: alice.id,
      content: `Café au lait ${w}`,
      deleted: false,
    });
  });

  it('matches the last word as a prefix and every earlier word whole', async () => {
    const alice = await person(app().app);
    const channel = await group(alice);
    const w = unique('w');
    const friday = await send(app().app, alice, { channel_id: channel.id, content: `deploy friday ${w}` });
    const refried = await send(app().app, alice, { channel_id: channel.id, content: `deploy refried ${w}` });

    expect(await foundIds(alice, { q: `${w} deploy fri` })).toEqual([friday.id]);
    expect(await foundIds(alice, { q: `${w} deploy FRIDAY` })).toEqual([friday.id]);
    expect(await foundIds(alice, { q: `${w} deploy f` })).toEqual([friday.id]);
    expect(await foundIds(alice, { q: `${w} deploy` })).toEqual([refried.id, friday.id]);
    expect(await foundIds(alice, { q: `${w} deploy re` })).toEqual([refried.id]);
    // A word before the last must be a whole word: "depl" is not "deploy".
    expect(await foundIds(alice, { q: `${w} depl friday` })).toEqual([]);
    expect(await foundIds(alice, { q: `${w} fri deploy` })).toEqual([]);
    // The prefix is the start of a word, not any part of it ("ried" is inside "refried").
    expect(await foundIds(alice, { q: `${w} deploy ried` })).toEqual([]);
    // Every word must be there.
    expect(await foundIds(alice, { q: `${w} deploy friday monday` })).toEqual([]);
  });

  it('treats a last word typed in decomposed form (NFD) as a prefix, like the same word precomposed', async () => {
    const alice = await person(app().app);
    const channel = await group(alice);
    const w = unique('w');
    const cafes = await send(app().app, alice, { channel_id: channel.id, content: `Cafés ouverts ${w}` });
    const precomposed = `${w} caf\u00e9`;
    const decomposed = `${w} cafe\u0301`;
    expect(precomposed.normalize('NFC')).toBe(decomposed.normalize('NFC'));
    expect(await foundIds(alice, { q: precomposed })).toEqual([cafes.id]);
    // The same text, as some keyboards and macOS send it: an "e" followed by a combining acute accent.
    expect(await foundIds(alice, { q: decomposed })).toEqual([cafes.id]);
  });
});

describe('search: only my channels', () => {
  it('never returns messages of channels the caller is not in, and follows joins and leaves', async () => {
    const alice = await person(app().app);
    const bob = await person(app().app);
    const carol = await person(app().app);
    const moderator = await person(app().app, { roles: ['moderator'] });
    const w = unique('w');

    const shared = await group(bob, [alice, carol]);
    const notMine = await group(bob, [carol]);
    const publicChannel = await createChannel(app().app, moderator, {
      name: unique('pub'),
      kind: 'public',
    });

    const inShared = await sendApart(bob, { channel_id: shared.id, content: `shared ${w}` });
    const inNotMine = await sendApart(bob, { channel_id: notMine.id, content: `private ${w}` });
    const inPublic = await sendApart(moderator, { channel_id: publicChannel.id, content: `public ${w}` });
    const bobToCarol = await sendApart(bob, { recipient_id: carol.id, content: `direct ${w}` });
    const bobToAlice = await sendApart(bob, { recipient_id: alice.id, content: `to alice ${w}` });

    expect(await foundIds(alice, { q: w })).toEqual([bobToAlice.id, inShared.id]);
    expect(await foundIds(carol, { q: w })).toEqual([bobToCarol.id, inNotMine.id, inShared.id]);
    expect(await foundIds(bob, { q: w })).toEqual([bobToAlice.id, bobToCarol.id, inNotMine.id, inShared.id]);
    expect(await foundIds(moderator, { q: w })).toEqual([inPublic.id]);

    // Naming a channel does not open it.
    expectError(await searchAs(alice, { q: w, channel_id: notMine.id }), 404, 'CHANNEL_NOT_FOUND');
    expectError(await searchAs(alice, { q: w, channel_id: bobToCarol.channel_id }), 404, 'CHANNEL_NOT_FOUND');
    expectError(await searchAs(alice, { q: w, channel_id: publicChannel.id }), 403, 'NOT_CHANNEL_MEMBER');
    expectError(await searchAs(alice, { q: w, channel_id: publicChannel.name }), 403, 'NOT_CHANNEL_MEMBER');
    expectError(await searchAs(alice, { q: w, channel_id: unique('nochannel') }), 404, 'CHANNEL_NOT_FOUND');

    // Joining the public channel brings its messages in.
    await ok(call(app().app, alice, 'POST', `/channels/${publicChannel.id}/join`));
    expect(await foundIds(alice, { q: w })).toEqual([bobToAlice.id, inPublic.id, inShared.id]);
    expect(await foundIds(alice, { q: w, channel_id: publicChannel.id })).toEqual([inPublic.id]);

    // Leaving a channel takes its messages out again.
    await ok(call(app().app, alice, 'DELETE', `/channels/${shared.id}/members/${alice.id}`), 204);
    expect(await foundIds(alice, { q: w })).toEqual([bobToAlice.id, inPublic.id]);
    expect(await foundIds(alice, { q: `shared ${w}` })).toEqual([]);
    expectError(await searchAs(alice, { q: w, channel_id: shared.id }), 404, 'CHANNEL_NOT_FOUND');
    // The others still find it.
    expect(await foundIds(carol, { q: `shared ${w}` })).toEqual([inShared.id]);
  });

  it('needs a signed-in caller', async () => {
    expectError(await searchAs(undefined, { q: unique('w') }), 401, 'UNAUTHORIZED');
  });
});

describe('search: filters and paging', () => {
  it('filters by channel, sender (id or email) and time, newest first', async () => {
    const alice = await person(app().app);
    const bob = await person(app().app);
    const first = await group(alice, [bob]);
    const second = await group(bob, [alice]);
    const w = unique('w');

    const a1 = await sendApart(alice, { channel_id: first.id, content: `one ${w}` });
    const b1 = await sendApart(bob, { channel_id: first.id, content: `two ${w}` });
    const b2 = await sendApart(bob, { channel_id: second.id, content: `three ${w}` });
    const a2 = await sendApart(alice, { channel_id: second.id, content: `four ${w}` });

    expect(await foundIds(alice, { q: w })).toEqual([a2.id, b2.id, b1.id, a1.id]);
    expect(await foundIds(bob, { q: w })).toEqual([a2.id, b2.id, b1.id, a1.id]);

    expect(await foundIds(alice, { q: w, channel_id: first.id })).toEqual([b1.id, a1.id]);
    expect(await foundIds(alice, { q: w, channel_id: second.name })).toEqual([a2.id, b2.id]);

    expect(await foundIds(alice, { q: w, sender_id: bob.id })).toEqual([b2.id, b1.id]);
    expect(await foundIds(alice, { q: w, sender_id: bob.email })).toEqual([b2.id, b1.id]);
    expect(await foundIds(alice, { q: w, sender_id: bob.email.toUpperCase() })).toEqual([b2.id, b1.id]);
    expect(await foundIds(alice, { q: w, sender_id: alice.id, channel_id: second.id })).toEqual([a2.id]);

    expect(await foundIds(alice, { q: w, after: a1.timestamp })).toEqual([a2.id, b2.id, b1.id]);
    expect(await foundIds(alice, { q: w, before: a2.timestamp })).toEqual([b2.id, b1.id, a1.id]);
    expect(await foundIds(alice, { q: w, after: a1.timestamp, before: a2.timestamp })).toEqual([
      b2.id,
      b1.id,
    ]);
    // The same instants written with an offset.
    expect(
      await foundIds(alice, { q: w, after: plusTwoHours(a1.timestamp), before: plusTwoHours(a2.timestamp) }),
    ).toEqual([b2.id, b1.id]);
    expect(
      await foundIds(alice, { q: w, sender_id: bob.id, after: b1.timestamp, channel_id: second.id }),
    ).toEqual([b2.id]);
    expect(await foundIds(alice, { q: w, after: a2.timestamp })).toEqual([]);
  });

  it('walks every result exactly once with limit 2 and the cursor, ending with next_cursor null', async () => {
    const alice = await person(app().app);
    const channel = await group(alice);
    const other = await group(alice);
    const w = unique('w');
    const sent: PublicMessage[] = [];
    for (let index = 0; index < 5; index += 1) {
      sent.push(
        await send(app().app, alice, {
          channel_id: index % 2 === 0 ? channel.id : other.id,
          content: `page ${index} ${w}`,
        }),
      );
    }
    const expected = sent.map((message) => message.id).reverse();

    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages += 1) {
      const page: SearchPage = await search(alice, {
        q: w,
        limit: '2',
        ...(cursor === null ? {} : { cursor }),
      });
      seen.push(...page.messages.map((message) => message.id));
      sizes.push(page.messages.length);
      expect(page.has_more).toBe(page.next_cursor !== null);
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    expect(cursor).toBeNull();
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen).toEqual(expected);

    // With a filter, the cursor pages within the filtered results.
    const firstPage = await search(alice, { q: w, channel_id: channel.id, limit: '2' });
    expect(firstPage.messages.map((message) => message.id)).toEqual([sent[4]!.id, sent[2]!.id]);
    expect(firstPage.next_cursor).not.toBeNull();
    const lastPage = await search(alice, {
      q: w,
      channel_id: channel.id,
      limit: '2',
      cursor: firstPage.next_cursor!,
    });
    expect(lastPage.messages.map((message) => message.id)).toEqual([sent[0]!.id]);
    expect(lastPage).toMatchObject({ next_cursor: null, has_more: false });

    // Exactly as many results as the limit: one page, nothing more.
    const exact = await search(alice, { q: w, channel_id: other.id, limit: '2' });
    expect(exact.messages.map((message) => message.id)).toEqual([sent[3]!.id, sent[1]!.id]);
    expect(exact).toMatchObject({ next_cursor: null, has_more: false });
  });
});

describe('search: deleted, hidden and edited messages', () => {
  it('does not find deleted messages, nor messages the caller hid (others still do)', async () => {
    const alice = await person(app().app);
    const bob = await person(app().app);
    const channel = await group(alice, [bob]);
    const w = unique('w');
    const kept = await sendApart(bob, { channel_id: channel.id, content: `kept ${w}` });
    const deleted = await sendApart(bob, { channel_id: channel.id, content: `deleted ${w}` });
    const hidden = await sendApart(bob, { channel_id: channel.id, content: `hidden ${w}` });
    expect(await foundIds(alice, { q: w })).toEqual([hidden.id, deleted.id, kept.id]);

    await ok(call(app().app, bob, 'DELETE', `/messages/${deleted.id}`));
    await ok(call(app().app, alice, 'POST', `/messages/${hidden.id}/hide`), 204);

    expect(await foundIds(alice, { q: w })).toEqual([kept.id]);
    expect(await foundIds(alice, { q: `deleted ${w}` })).toEqual([]);
    expect(await foundIds(alice, { q: `${w} hidd` })).toEqual([]);
    expect(await foundIds(bob, { q: w })).toEqual([hidden.id, kept.id]);
    expect(await foundIds(bob, { q: `deleted ${w}` })).toEqual([]);
  });

  it('finds an edited message by its new words and not its old ones', async () => {
    const alice = await person(app().app);
    const bob = await person(app().app);
    const channel = await group(alice, [bob]);
    const w = unique('w');
    const message = await send(app().app, alice, { channel_id: channel.id, content: `alpha ${w}` });
    expect(await foundIds(bob, { q: `alpha ${w}` })).toEqual([message.id]);

    await ok(call(app().app, alice, 'PATCH', `/messages/${message.id}`, { content: `omega ${w}` }));

    expect(await foundIds(bob, { q: `alpha ${w}` })).toEqual([]);
    expect(await foundIds(bob, { q: `${w} alph` })).toEqual([]);
    const page = await search(bob, { q: `omega ${w}` });
    expect(page.messages).toHaveLength(1);
    expect(page.messages[0]).toMatchObject({ id: message.id, content: `omega ${w}` });
    expect(page.messages[0]!.edited_at).not.toBeNull();
    expect(await foundIds(alice, { q: `${w} ome` })).toEqual([message.id]);
  });
});

describe('search: bad input', () => {
  it('refuses a missing, empty or letterless q', async () => {
    const alice = await person(app().app);
    const noQuery = await call(app().app, alice, 'GET', '/search/messages');
    expectValidation(noQuery, 'q');
    for (const q of ['', '   ', '!!!', '-- ... ??', '@#$%^&*()']) {
      expectValidation(await searchAs(alice, { q }), 'q');
    }
    expectValidation(await searchAs(alice, { q: 'x'.repeat(201) }), 'q');
  });

  it('refuses bad dates, bad cursors, out-of-range limits and unknown fields', async () => {
    const alice = await person(app().app);
    const q = unique('w');
    for (const value of [
      'yesterday',
      '2024-01-01',
      '2024-13-01T00:00:00Z',
      '2024-01-01T25:00:00Z',
      '1700000000',
    ]) {
      expectValidation(await searchAs(alice, { q, before: value }), 'before');
      expectValidation(await searchAs(alice, { q, after: value }), 'after');
    }
    // Made-up cursors of the right encoding but the wrong contents are refused too.
    const madeUp = ['null', '{}', '[1,2]', '["yesterday","x"]', '[1700000000000]'].map((json) =>
      Buffer.from(json).toString('base64url'),
    );
    for (const cursor of ['not-a-cursor', 'ZZZZZZZZZZZZZZZZZZZZZZZZ', '', 'a'.repeat(400), ...madeUp]) {
      expectValidation(await searchAs(alice, { q, cursor }), 'cursor');
    }
    for (const limit of ['0', '1000', '201', '-1', '2.5', 'ten']) {
      expectValidation(await searchAs(alice, { q, limit }), 'limit');
    }
    expectValidation(await searchAs(alice, { q, channel: 'general' }), 'channel');
    expectValidation(await searchAs(alice, { q, sender: alice.id }), 'sender');
    expectValidation(await searchAs(alice, { q, page: '2' }), 'page');
  });

  it('refuses a cursor whose time is not a date, rather than answering an empty last page', async () => {
    const alice = await person(app().app);
    const channel = await group(alice);
    const w = unique('w');
    const message = await send(app().app, alice, { channel_id: channel.id, content: `still here ${w}` });
    const first = await search(alice, { q: w, limit: '1' });
    expect(first.messages.map((found) => found.id)).toEqual([message.id]);
    // Same shape as a cursor the server issues, with a time no date can have (beyond ±8.64e15 ms).
    for (const time of ['1e300', '-1e300', '9e15']) {
      const cursor = Buffer.from(`[${time},${JSON.stringify(message.id)}]`).toString('base64url');
      expectValidation(await searchAs(alice, { q: w, cursor }), 'cursor');
    }
  });

  it('answers 404 for an unknown sender', async () => {
    const alice = await person(app().app);
    expectError(
      await searchAs(alice, { q: unique('w'), sender_id: `${unique('nobody')}@example.com` }),
      404,
      'USER_NOT_FOUND',
    );
  });
});
