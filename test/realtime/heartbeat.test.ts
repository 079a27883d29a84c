// The heartbeat: the server pings every ws.heartbeat_ms; a client that answers (the ws library pongs by
// itself) stays connected, and one that stops answering is cut off after missing two and forgotten by the
// hub, so a dead peer never holds a place or a presence.
import { describe, expect, it } from 'vitest';
import { person } from '../conversations/fixtures.js';
import { connect, tcpOf, type TestSocket } from './client.js';
import { useListeningApp } from './fixtures.js';

const HEARTBEAT_MS = 1000;
const listening = useListeningApp({ ws: { heartbeat_ms: HEARTBEAT_MS } });

/** Counts the protocol pings a client receives from the server. */
function countPings(socket: TestSocket): () => number {
  let pings = 0;
  socket.socket.on('ping', () => (pings += 1));
  return () => pings;
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('heartbeat', () => {
  it('keeps a client that answers pings connected over several heartbeats', async () => {
    const { app, port } = listening();
    const { hub } = app.realtime;
    const alice = await person(app);
    const socket = await connect(port, alice);
    expect(socket.frames[0]).toMatchObject({ type: 'hello', heartbeat_ms: HEARTBEAT_MS });
    const pings = countPings(socket);
    const before = hub.stats();

    // Three and a half heartbeats: more than the two a silent client may miss.
    await sleep(3.5 * HEARTBEAT_MS);
    expect(pings()).toBeGreaterThanOrEqual(2);
    expect(socket.closeCode).toBeUndefined();
    expect(hub.stats()).toMatchObject({
      sockets: before.sockets,
      users: before.users,
      heartbeat_terminations: before.heartbeat_terminations,
    });
    expect(hub.isConnected(alice.id)).toBe(true);
    const pong = await socket.request({ type: 'ping' });
    expect(pong.type).toBe('ack');
    expect(socket.ofType('pong')).toHaveLength(1);
    await socket.close();
  });

  it('terminates a client that stops answering, forgets it, and leaves a healthy one alone', async () => {
    const { app, port } = listening();
    const { hub } = app.realtime;
    const [alice, bob] = await Promise.all([person(app), person(app)]);
    const healthy = await connect(port, bob);
    const silent = await connect(port, alice);
    const before = hub.stats();
    expect(hub.isConnected(alice.id)).toBe(true);

    tcpOf(silent).pause();
    await waitUntil(
      () => hub.stats().heartbeat_terminations > before.heartbeat_terminations,
      'the server terminated the silent client',
    );
    await waitUntil(() => hub.stats().sockets === before.sockets - 1, 'the hub stopped counting the socket');
    expect(hub.stats()).toMatchObject({
      users: before.users - 1,
      heartbeat_terminations: before.heartbeat_terminations + 1,
      slow_consumer_closes: before.slow_consumer_closes,
    });
    expect(hub.isConnected(alice.id)).toBe(false);

    // Cut off without a closing handshake: the client sees an abnormal close once it reads again.
    tcpOf(silent).resume();
    expect(await silent.closed).toBe(1006);

    // The client that answers is still there, and a new socket for alice works.
    expect(healthy.closeCode).toBeUndefined();
    expect((await healthy.request({ type: 'ping' })).type).toBe('ack');
    const back = await connect(port, alice);
    expect(hub.isConnected(alice.id)).toBe(true);
    await Promise.all([healthy.close(), back.close()]);
  });
});
