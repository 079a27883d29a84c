// Broadcasts to everyone (presence changes, announcements) reach thousands of sockets a slice per turn of
// the event loop, so a channel's message published meanwhile goes out before the broadcast has finished
// instead of waiting behind it; every connection still gets every broadcast exactly once, in order.
// The hub here is the real one with real long-poll connections (they keep what they are given).
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { SoloCluster } from '../../src/realtime/cluster.js';
import { PollConnection } from '../../src/realtime/connection.js';
import { Hub } from '../../src/realtime/hub.js';
import type { RealtimeEvent } from '../../src/services/events.js';

const CHANNEL = 'channel-1';
/** Well past one slice (500 sockets), so a broadcast needs several turns. */
const USERS = 2000;

const { config } = loadConfig({ env: { DEBUG: 'true' }, cwd: '/nonexistent' });
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

let hub: Hub | undefined;
afterEach(() => hub?.close());

async function hubWith(users: number): Promise<{ hub: Hub; connections: PollConnection[] }> {
  hub = new Hub({
    config: config.ws,
    cluster: new SoloCluster(),
    channelIdsOf: async () => [CHANNEL],
    log: pino({ level: 'silent' }),
  });
  const connections = Array.from(
    { length: users },
    (_, index) =>
      new PollConnection(
        {
          id: `user-${index}`,
          sessionId: `session-${index}`,
          email: `user-${index}@example.com`,
          name: `User ${index}`,
          department: 'Engineering',
          roles: ['member'],
        },
        10,
      ),
  );
  for (const connection of connections) expect(await hub.add(connection)).toBe('added');
  return { hub, connections };
}

const typesOf = (connection: PollConnection) =>
  connection.takeAfter(0).events.map((event: RealtimeEvent) => `${event.type}:${String(event.n)}`);

describe('broadcasts to everyone', () => {
  it('go out a slice per turn, and a channel message published meanwhile does not wait for them', async () => {
    const { hub, connections } = await hubWith(USERS);
    hub.deliverLocal({ type: 'status_update', n: 1 }, { kind: 'everyone' });
    hub.deliverLocal(
      { type: 'chat_message', n: 2, channel_id: CHANNEL },
      { kind: 'channel', channelId: CHANNEL },
    );

    await turn();
    const last = connections.at(-1)!;
    // After one turn: the message has reached the last connection, the broadcast has not yet.
    expect(last.position).toBe(1);
    expect(typesOf(last)).toEqual(['chat_message:2']);
    expect(connections.filter((connection) => connection.position === 2).length).toBeGreaterThan(0);
    expect(connections.filter((connection) => connection.position === 2).length).toBeLessThan(USERS);

    for (let turns = 0; turns < 10; turns += 1) await turn();
    expect(connections.every((connection) => connection.position === 2)).toBe(true);
    expect(typesOf(connections[0]!)).toEqual(['chat_message:2', 'status_update:1']);
  });

  it('reach each connection once and in the order they were published', async () => {
    const { hub, connections } = await hubWith(USERS);
    for (const n of [1, 2, 3]) hub.deliverLocal({ type: 'status_update', n }, { kind: 'everyone' });
    for (let turns = 0; turns < 20; turns += 1) await turn();
    for (const connection of connections)
      expect(typesOf(connection)).toEqual(['status_update:1', 'status_update:2', 'status_update:3']);
  });

  it('are delivered at once for a small crowd', async () => {
    const { hub, connections } = await hubWith(10);
    hub.deliverLocal({ type: 'status_update', n: 1 }, { kind: 'everyone' });
    await turn();
    expect(connections.map(typesOf)).toEqual(Array(10).fill(['status_update:1']));
  });
});
