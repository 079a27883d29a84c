// The long-poll fallback: the same event objects as the socket, a cursor that moves on, a wait that
// ends when an event arrives, and clear answers for bad, foreign or expired cursors.
import { describe, expect, it } from 'vitest';
import { call, createChannel, ok, person, send } from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { connect } from './client.js';
import { useListeningApp } from './fixtures.js';

const listening = useListeningApp({ ws: { poll_buffer: 20 } });

interface PollBody {
  events: { type: string; [field: string]: unknown }[];
  cursor: string;
  reset?: boolean;
}

type Who = Awaited<ReturnType<typeof person>>;

/** Polls on until an event matches (other users' status changes may come first); returns all seen. */
async function pollUntil(who: Who, cursor: string, match: (event: PollBody['events'][number]) => boolean) {
  const seen: PollBody['events'] = [];
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const page = await ok<PollBody>(
      call(listening().app, who, 'GET', '/events', undefined, { cursor, wait_s: '5' }),
    );
    seen.push(...page.events);
    cursor = page.cursor;
    if (page.events.some(match)) return { seen, cursor };
  }
  throw new Error('the event never came');
}

describe('GET /events', () => {
  it('returns the same events as the socket, then moves on from the cursor', async () => {
    const { port, app } = listening();
    const [alice, bob] = [await person(app), await person(app)];
    const channel = await createChannel(app, alice, {
      name: `poll-${Date.now()}`,
      kind: 'group',
      members: [bob.id],
    });
    const start = await ok<PollBody>(call(app, bob, 'GET', '/events'));
    expect(start.events).toEqual([]);
    const bobSocket = await connect(port, bob);

    const message = await send(app, alice, { channel_id: channel.id, content: 'for both' });
    const onSocket = await bobSocket.waitForType('chat_message');
    const polled = await ok<PollBody>(
      call(app, bob, 'GET', '/events', undefined, { cursor: start.cursor, wait_s: '5' }),
    );
    const polledMessage = polled.events.find((event) => event.type === 'chat_message');
    expect(polledMessage).toEqual(onSocket);
    expect(polledMessage).toMatchObject({ id: message.id });
    expect(polled.cursor).not.toBe(start.cursor);

    // The next poll waits for something new, and gets it when it comes.
    const sending = new Promise((resolve) => setTimeout(resolve, 200)).then(() =>
      send(app, alice, { channel_id: channel.id, content: 'while you wait' }),
    );
    const next = await pollUntil(bob, polled.cursor, (event) => event.type === 'chat_message');
    const later = await sending;
    const ids = next.seen.filter((event) => event.type === 'chat_message').map((event) => event.id);
    expect(ids).toEqual([later.id]);
    await bobSocket.close();
  });

  it('answers an empty page when nothing comes within wait_s', async () => {
    const { app } = listening();
    const alice = await person(app);
    const start = await ok<PollBody>(call(app, alice, 'GET', '/events'));
    // The subscription itself makes its user online: that status change comes first.
    const online = await pollUntil(alice, start.cursor, (event) => event.user_id === alice.id);
    expect(online.seen).toContainEqual(expect.objectContaining({ type: 'status_update', status: 'online' }));
    // Other users' status changes may still trickle in; once they stop, a poll ends empty after wait_s.
    let cursor = online.cursor;
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const page = await ok<PollBody>(call(app, alice, 'GET', '/events', undefined, { cursor, wait_s: '1' }));
      if (page.events.length === 0) {
        expect(page.cursor).toBe(cursor);
        return;
      }
      cursor = page.cursor;
    }
    throw new Error('the events never stopped');
  });

  it('tells the client to resync after an overflow, a foreign or an unknown cursor', async () => {
    const { app } = listening();
    const [alice, bob] = [await person(app), await person(app)];
    const channel = await createChannel(app, alice, {
      name: `flood-${Date.now()}`,
      kind: 'group',
      members: [bob.id],
    });
    const start = await ok<PollBody>(call(app, bob, 'GET', '/events'));
    for (let i = 0; i < 25; i += 1) await send(app, alice, { channel_id: channel.id, content: `flood ${i}` });
    const overflowed = await ok<PollBody>(
      call(app, bob, 'GET', '/events', undefined, { cursor: start.cursor }),
    );
    expect(overflowed).toMatchObject({ events: [], reset: true });

    const foreign = await ok<PollBody>(
      call(app, alice, 'GET', '/events', undefined, { cursor: overflowed.cursor }),
    );
    expect(foreign.reset).toBe(true);
    expect(foreign.cursor.split('.')[0]).not.toBe(overflowed.cursor.split('.')[0]);
    const unknown = await ok<PollBody>(call(app, bob, 'GET', '/events', undefined, { cursor: 'abcdef.3' }));
    expect(unknown).toMatchObject({ events: [], reset: true });
  });

  it('keeps at most as many subscriptions per user as tabs: the oldest makes way', async () => {
    const { app } = listening();
    const alice = await person(app);
    const cursors: string[] = [];
    for (let i = 0; i < 11; i += 1)
      cursors.push((await ok<PollBody>(call(app, alice, 'GET', '/events'))).cursor);
    const oldest = await ok<PollBody>(
      call(app, alice, 'GET', '/events', undefined, { cursor: cursors[0]!, wait_s: '0' }),
    );
    expect(oldest.reset).toBe(true);
    const newest = await ok<PollBody>(
      call(app, alice, 'GET', '/events', undefined, { cursor: cursors[10]!, wait_s: '0' }),
    );
    expect(newest.reset).toBeUndefined();
  });

  it('refuses a malformed cursor, a bad wait and anonymous callers', async () => {
    const { app } = listening();
    const alice = await person(app);
    expectError(
      await call(app, alice, 'GET', '/events', undefined, { cursor: 'no dots here' }),
      400,
      'INVALID_CURSOR',
    );
    expectError(
      await call(app, alice, 'GET', '/events', undefined, { wait_s: '31' }),
      400,
      'VALIDATION_FAILED',
    );
    expectError(await call(app, undefined, 'GET', '/events'), 401, 'UNAUTHORIZED');
  });
});
