// Reactions over HTTP: PUT adds mine (once per emoji however often I ask), DELETE removes it (idempotent),
// ?replace= swaps one of mine, emoji and short codes travel in the URL, names that would break a document
// key are stored as plain data, the distinct-reaction limit, deleted messages, who may react, the
// reaction_update event with the full summary, and ten people reacting at the same moment.
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { PublicMessage, PublicReaction } from '../../src/services/message-content.js';
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

interface ReactionSummary {
  message_id: string;
  channel_id: string;
  reactions: PublicReaction[];
  change_seq: number;
}

const THUMBS = '👍';
const PARTY = '🎉';

function helpers(app: () => FastifyInstance) {
  const url = (messageId: string, reaction: string) =>
    `/messages/${messageId}/reactions/${encodeURIComponent(reaction)}`;

  const add = (who: Person | undefined, messageId: string, reaction: string, replace?: string) =>
    call(
      app(),
      who,
      'PUT',
      url(messageId, reaction),
      undefined,
      replace === undefined ? undefined : { replace },
    );

  const remove = (who: Person, messageId: string, reaction: string) =>
    call(app(), who, 'DELETE', url(messageId, reaction));

  /** The message as `who` reads it in the channel's history. */
  const stored = async (who: Person, channelId: string, messageId: string): Promise<PublicMessage> => {
    const body = await ok<{ messages: PublicMessage[] }>(
      call(app(), who, 'GET', `/channels/${channelId}/messages`, undefined, { limit: '200' }),
    );
    const message = body.messages.find((entry) => entry.id === messageId);
    expect(message, `${messageId} is not in the history`).toBeDefined();
    return message!;
  };

  const changePosition = async (who: Person, channelId: string) =>
    (await ok<{ last_seq: number }>(call(app(), who, 'GET', `/channels/${channelId}/changes`))).last_seq;

  /** A group of the owner and `others`, with one message from the owner. */
  const setup = async (others = 1) => {
    const people = await Promise.all(Array.from({ length: others + 1 }, () => person(app())));
    const [owner, ...rest] = people;
    const channel = await createChannel(app(), owner!, {
      name: unique('rx'),
      kind: 'group',
      members: rest.map((member) => member.id),
    });
    const message = await send(app(), owner!, { channel_id: channel.id, content: 'react to me' });
    return { people, owner: owner!, channel, message };
  };

  return { add, remove, stored, changePosition, setup };
}

describe('reactions', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;
  const { add, remove, stored, changePosition, setup } = helpers(app);

  it('adding one counts once however often I ask; a second person makes it 2', async () => {
    const { people, channel, message } = await setup(1);
    const [alice, bob] = people as [Person, Person];

    const first = await ok<ReactionSummary>(add(bob, message.id, THUMBS));
    expect(first).toEqual({
      message_id: message.id,
      channel_id: channel.id,
      reactions: [{ reaction_type: THUMBS, user_ids: [bob.id], count: 1 }],
      change_seq: expect.any(Number),
    });
    expect(first.change_seq).toBeGreaterThan(message.change_seq);

    const events = recordEvents(app());
    const again = await ok<ReactionSummary>(add(bob, message.id, THUMBS));
    events.stop();
    expect(again).toEqual(first);
    expect(events.ofType('reaction_update')).toEqual([]);

    const both = await ok<ReactionSummary>(add(alice, message.id, THUMBS));
    expect(both.reactions).toEqual([{ reaction_type: THUMBS, user_ids: [bob.id, alice.id], count: 2 }]);
    expect((await stored(bob, channel.id, message.id)).reactions).toEqual(both.reactions);
    expect(await changePosition(alice, channel.id)).toBe(both.change_seq);
  });

  it('DELETE removes only my reaction and is idempotent; the last one gone removes the entry', async () => {
    const { people, channel, message } = await setup(1);
    const [alice, bob] = people as [Person, Person];
    await ok(add(alice, message.id, THUMBS));
    await ok(add(bob, message.id, THUMBS));
    await ok(add(bob, message.id, PARTY));

    const removed = await ok<ReactionSummary>(remove(bob, message.id, THUMBS));
    expect(removed.reactions).toEqual([
      { reaction_type: THUMBS, user_ids: [alice.id], count: 1 },
      { reaction_type: PARTY, user_ids: [bob.id], count: 1 },
    ]);

    const events = recordEvents(app());
    const again = await ok<ReactionSummary>(remove(bob, message.id, THUMBS));
    const never = await ok<ReactionSummary>(remove(alice, message.id, '🦄'));
    events.stop();
    expect(again).toEqual(removed);
    expect(never).toEqual(removed);
    expect(events.ofType('reaction_update')).toEqual([]);

    const last = await ok<ReactionSummary>(remove(bob, message.id, PARTY));
    expect(last.reactions).toEqual([{ reaction_type: THUMBS, user_ids: [alice.id], count: 1 }]);
    expect((await stored(alice, channel.id, message.id)).reactions).toEqual(last.reactions);
  });

  it('PUT …/NEW?replace=OLD swaps my reaction and leaves other people’s', async () => {
    const { people, channel, message } = await setup(1);
    const [alice, bob] = people as [Person, Person];
    await ok(add(alice, message.id, THUMBS));
    await ok(add(bob, message.id, THUMBS));

    const swapped = await ok<ReactionSummary>(add(alice, message.id, PARTY, THUMBS));
    expect(swapped.reactions).toEqual([
      { reaction_type: THUMBS, user_ids: [bob.id], count: 1 },
      { reaction_type: PARTY, user_ids: [alice.id], count: 1 },
    ]);
    // Replacing one I do not have simply adds the new one; replacing with the same is no change.
    const added = await ok<ReactionSummary>(add(bob, message.id, '🚀', '😢'));
    expect(added.reactions).toEqual([
      ...swapped.reactions,
      { reaction_type: '🚀', user_ids: [bob.id], count: 1 },
    ]);
    const same = await ok<ReactionSummary>(add(bob, message.id, '🚀', '🚀'));
    expect(same).toEqual(added);
    expect((await stored(alice, channel.id, message.id)).reactions).toEqual(added.reactions);
  });

  it('emoji, modifiers and short codes travel in the URL; names with "." and "$" are stored as plain data', async () => {
    const { owner, channel, message } = await setup(0);
    const names = ['👍🏽', '👨‍👩‍👧', ':tada:', '+1', '$set', 'a.b', '__proto__', '%', '?x=1'];
    let last: ReactionSummary | undefined;
    for (const name of names) last = await ok<ReactionSummary>(add(owner, message.id, name));
    const expected = names.map((name) => ({ reaction_type: name, user_ids: [owner.id], count: 1 }));
    expect(last!.reactions).toEqual(expected);
    // Stored as an array of {reaction_type, user_ids, count}, in the order they were first added.
    expect((await stored(owner, channel.id, message.id)).reactions).toEqual(expected);
    expect((await ok<ReactionSummary>(remove(owner, message.id, '$set'))).reactions).toEqual(
      expected.filter((entry) => entry.reaction_type !== '$set'),
    );
  });

  it('an invalid reaction is 400 VALIDATION_FAILED and changes nothing', async () => {
    const { owner, channel, message } = await setup(0);
    await ok(add(owner, message.id, THUMBS));
    const before = await stored(owner, channel.id, message.id);
    const position = await changePosition(owner, channel.id);
    const events = recordEvents(app());

    for (const bad of ['thumbs up', ' ', 'tab\there', 'nul\u0000', 'x'.repeat(65)]) {
      expectValidation(await add(owner, message.id, bad), 'reaction');
      expectValidation(await remove(owner, message.id, bad), 'reaction');
    }
    expectValidation(await add(owner, message.id, PARTY, 'not valid'), 'replace');
    expectValidation(await add(owner, 'not-an-id', THUMBS), 'messageId');
    expectError(await add(owner, `${channel.id}-99`, THUMBS), 404, 'MESSAGE_NOT_FOUND');
    expectValidation(await add(owner, 'ffffffffffffffffffffffff', THUMBS), 'messageId');
    events.stop();

    expect(events.events).toEqual([]);
    expect(await stored(owner, channel.id, message.id)).toEqual(before);
    expect(await changePosition(owner, channel.id)).toBe(position);
  });

  it('reacting to a deleted message is 409 MESSAGE_DELETED', async () => {
    const { people, channel, message } = await setup(1);
    const [alice, bob] = people as [Person, Person];
    await ok(add(bob, message.id, THUMBS));
    await ok(call(app(), alice, 'DELETE', `/messages/${message.id}`));
    const before = await stored(bob, channel.id, message.id);
    const position = await changePosition(bob, channel.id);
    const events = recordEvents(app());

    expectError(await add(bob, message.id, PARTY), 409, 'MESSAGE_DELETED');
    expectError(await remove(bob, message.id, THUMBS), 409, 'MESSAGE_DELETED');
    expectError(await add(bob, message.id, PARTY, THUMBS), 409, 'MESSAGE_DELETED');
    events.stop();

    expect(events.events).toEqual([]);
    expect(before).toMatchObject({ deleted: true, reactions: [] });
    expect(await stored(bob, channel.id, message.id)).toEqual(before);
    expect(await changePosition(bob, channel.id)).toBe(position);
  });

  it('only members react: an outsider gets 404, someone who has not joined a public channel 403', async () => {
    const [moderator, outsider] = await Promise.all([person(app(), { roles: ['moderator'] }), person(app())]);
    const { message } = await setup(0);
    const open = await createChannel(app(), moderator, { name: unique('pub'), kind: 'public' });
    const announcement = await send(app(), moderator, { channel_id: open.id, content: 'welcome' });

    expectError(await add(outsider, message.id, THUMBS), 404, 'MESSAGE_NOT_FOUND');
    expectError(await remove(outsider, message.id, THUMBS), 404, 'MESSAGE_NOT_FOUND');
    expectError(await add(outsider, announcement.id, THUMBS), 403, 'NOT_CHANNEL_MEMBER');
    expectError(await add(undefined, message.id, THUMBS), 401, 'UNAUTHORIZED');
    expect((await stored(moderator, open.id, announcement.id)).reactions).toEqual([]);

    await ok(call(app(), outsider, 'POST', `/channels/${open.id}/join`));
    expect((await ok<ReactionSummary>(add(outsider, announcement.id, THUMBS))).reactions).toEqual([
      { reaction_type: THUMBS, user_ids: [outsider.id], count: 1 },
    ]);
  });

  it('every change publishes reaction_update with the full summary to the channel', async () => {
    const { people, channel, message } = await setup(1);
    const [alice, bob] = people as [Person, Person];
    const events = recordEvents(app());
    const summaries = [
      await ok<ReactionSummary>(add(alice, message.id, THUMBS)),
      await ok<ReactionSummary>(add(bob, message.id, THUMBS)),
      await ok<ReactionSummary>(add(bob, message.id, PARTY, THUMBS)),
      await ok<ReactionSummary>(remove(alice, message.id, THUMBS)),
    ];
    events.stop();
    const published = events.ofType('reaction_update');
    expect(published.map((entry) => entry.event)).toEqual(
      summaries.map((summary) => ({ type: 'reaction_update', ...summary })),
    );
    for (const entry of published) expect(entry.audience).toEqual({ kind: 'channel', channelId: channel.id });
    expect(summaries.at(-1)!.reactions).toEqual([{ reaction_type: PARTY, user_ids: [bob.id], count: 1 }]);
    const positions = summaries.map((summary) => summary.change_seq);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(new Set(positions).size).toBe(positions.length);
  });

  it('ten people reacting at the same moment are all counted', async () => {
    const { people, channel, message } = await setup(9);
    const responses = await Promise.all(people.map((who) => add(who, message.id, THUMBS)));
    for (const response of responses) expect(response.statusCode, response.body).toBe(200);

    const [reaction] = (await stored(people[0]!, channel.id, message.id)).reactions;
    expect(reaction!.count).toBe(10);
    expect([...reaction!.user_ids].sort()).toEqual(people.map((who) => who.id).sort());
    // And ten different reactions at once from one person are all kept too.
    const emoji = ['😀', '😃', '😄', '😁', '😆', '😅', '🤣', '😂', '🙂', '🙃'];
    const mine = await Promise.all(emoji.map((name) => add(people[1]!, message.id, name)));
    for (const response of mine) expect(response.statusCode, response.body).toBe(200);
    const after = await stored(people[0]!, channel.id, message.id);
    expect(after.reactions.map((entry) => entry.reaction_type).sort()).toEqual([THUMBS, ...emoji].sort());
  });
});

describe('reactions with at most 3 different ones per message', () => {
  const testApp = useTestApp(conversationOverrides({ messages: { max_reactions: 3 } }));
  const app = () => testApp().app;
  const { add, remove, stored, changePosition, setup } = helpers(app);

  it('a 4th different reaction is 409 TOO_MANY_REACTIONS; existing ones still gain people; a freed slot can be used', async () => {
    const { people, channel, message } = await setup(1);
    const [alice, bob] = people as [Person, Person];
    for (const name of ['a1', 'a2', 'a3']) await ok(add(alice, message.id, name));
    const before = await stored(alice, channel.id, message.id);
    const position = await changePosition(alice, channel.id);
    const events = recordEvents(app());

    expectError(await add(bob, message.id, 'a4'), 409, 'TOO_MANY_REACTIONS');
    expectError(await add(alice, message.id, 'a4'), 409, 'TOO_MANY_REACTIONS');
    events.stop();
    expect(events.events).toEqual([]);
    expect(await stored(alice, channel.id, message.id)).toEqual(before);
    expect(await changePosition(alice, channel.id)).toBe(position);

    expect((await ok<ReactionSummary>(add(bob, message.id, 'a2'))).reactions).toHaveLength(3);
    // Swapping one of mine for a new kind keeps the count at 3 when mine was the only one of its kind.
    expect(
      (await ok<ReactionSummary>(add(alice, message.id, 'a4', 'a3'))).reactions.map((r) => r.reaction_type),
    ).toEqual(['a1', 'a2', 'a4']);
    await ok(remove(alice, message.id, 'a1'));
    expect(
      (await ok<ReactionSummary>(add(bob, message.id, 'a5'))).reactions.map((r) => r.reaction_type),
    ).toEqual(['a2', 'a4', 'a5']);
  });
});
