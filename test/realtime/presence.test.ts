// Presence and typing: online while any tab is open, offline only after the grace period, chosen
// statuses kept, changes coalesced into few frames; typing relayed to the other members and throttled.
import { describe, expect, it } from 'vitest';
import { createChannel, person, send, type Person } from '../conversations/fixtures.js';
import { sleep } from '../identity/fixtures.js';
import { connect, type Frame, type TestSocket } from './client.js';
import { useListeningApp } from './fixtures.js';

const GRACE_MS = 400;
const listening = useListeningApp({
  ws: { presence_grace_ms: GRACE_MS, status_flush_ms: 50, typing_throttle_ms: 60_000 },
});

/** Every status change a socket saw, single or coalesced. */
function statusChanges(
  socket: TestSocket,
): { user_id: string; status: string; last_seen_at: string | null }[] {
  return socket.frames.flatMap((frame: Frame) => {
    if (frame.type === 'status_update') return [frame as never];
    if (frame.type === 'status_updates') return frame.statuses as never[];
    return [];
  });
}

function statusesOf(socket: TestSocket, who: Person): string[] {
  return statusChanges(socket)
    .filter((change) => change.user_id === who.id)
    .map((change) => change.status);
}

async function waitForStatus(socket: TestSocket, who: Person, status: string): Promise<void> {
  await socket.waitFor(() => statusesOf(socket, who).includes(status), 5000, `${who.email} ${status}`);
}

describe('presence', () => {
  it('is online while any tab is open and offline after the grace period, with last_seen_at', async () => {
    const { port, app } = listening();
    const [watcher, alice] = [await person(app), await person(app)];
    const watching = await connect(port, watcher);
    const tab1 = await connect(port, alice);
    const tab2 = await connect(port, alice);
    await waitForStatus(watching, alice, 'online');
    await tab1.close();
    await sleep(GRACE_MS * 2);
    await watching.request({ type: 'ping' });
    expect(statusesOf(watching, alice)).toEqual(['online']);
    await tab2.close();
    await waitForStatus(watching, alice, 'offline');
    const offline = statusChanges(watching).find((c) => c.user_id === alice.id && c.status === 'offline')!;
    expect(Date.parse(offline.last_seen_at!)).toBeGreaterThan(Date.now() - 10_000);
    await watching.close();
  });

  it('does not flicker on a reload within the grace period', async () => {
    const { port, app } = listening();
    const [watcher, alice] = [await person(app), await person(app)];
    const watching = await connect(port, watcher);
    const before = await connect(port, alice);
    await waitForStatus(watching, alice, 'online');
    await before.close();
    const after = await connect(port, alice);
    await sleep(GRACE_MS * 2);
    await watching.request({ type: 'ping' });
    expect(statusesOf(watching, alice)).toEqual(['online']);
    await Promise.all([after.close(), watching.close()]);
  });

  it('keeps a chosen status across reconnects and lists it in the snapshot', async () => {
    const { port, app } = listening();
    const [watcher, alice] = [await person(app), await person(app)];
    const watching = await connect(port, watcher);
    const socket = await connect(port, alice);
    expect(await socket.request({ type: 'set_status', status: 'busy' })).toMatchObject({
      type: 'ack',
      status: 'busy',
    });
    await waitForStatus(watching, alice, 'busy');
    await socket.close();
    await waitForStatus(watching, alice, 'offline');
    const snapshotWhileAway = await watching.request({ type: 'get_all_statuses' });
    expect(snapshotWhileAway.type).toBe('ack');
    const [whileAway] = watching.ofType('all_statuses').slice(-1);
    expect((whileAway!.statuses as { user_id: string }[]).some((s) => s.user_id === alice.id)).toBe(false);

    const back = await connect(port, alice);
    await watching.waitFor(() => statusesOf(watching, alice).filter((s) => s === 'busy').length === 2);
    await watching.request({ type: 'get_all_statuses' });
    const [snapshot] = watching.ofType('all_statuses').slice(-1);
    expect(snapshot!.statuses).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ user_id: alice.id, status: 'busy' }),
        expect.objectContaining({ user_id: watcher.id, status: 'online' }),
      ]),
    );
    await Promise.all([back.close(), watching.close()]);
  });

  it('coalesces many users arriving at once into a few frames per connection', async () => {
    const { port, app } = listening();
    const watcher = await person(app);
    const crowd = await Promise.all(Array.from({ length: 25 }, () => person(app)));
    const watching = await connect(port, watcher);
    await sleep(100);
    const framesBefore = watching.frames.length;
    const sockets = await Promise.all(crowd.map((who) => connect(port, who)));
    await watching.waitFor(() => crowd.every((who) => statusesOf(watching, who).includes('online')));
    const statusFrames = watching.frames
      .slice(framesBefore)
      .filter((frame) => frame.type === 'status_update' || frame.type === 'status_updates');
    expect(statusFrames.length).toBeLessThanOrEqual(5);
    expect(statusFrames.some((frame) => frame.type === 'status_updates')).toBe(true);
    await Promise.all([...sockets, watching].map((s) => s.close()));
  });
});

describe('typing', () => {
  it('relays to the other members only, once per throttle interval, and stores nothing', async () => {
    const { port, app } = listening();
    const [alice, bob, carol] = [await person(app), await person(app), await person(app)];
    const channel = await createChannel(app, alice, {
      name: `typing-${Date.now()}`,
      kind: 'group',
      members: [bob.id],
    });
    const aliceTab = await connect(port, alice);
    const aliceOther = await connect(port, alice);
    const bobSocket = await connect(port, bob);
    const carolSocket = await connect(port, carol);
    const answers = [];
    for (let i = 0; i < 4; i += 1)
      answers.push(await aliceTab.request({ type: 'typing', channel_id: channel.id }));
    expect(answers.map((a) => a.relayed)).toEqual([true, false, false, false]);
    const typing = await bobSocket.waitForType('typing');
    expect(typing).toEqual({ type: 'typing', channel_id: channel.id, user_id: alice.id });
    await bobSocket.request({ type: 'ping' });
    expect(bobSocket.ofType('typing')).toHaveLength(1);
    for (const socket of [aliceOther, carolSocket]) {
      await socket.request({ type: 'ping' });
      expect(socket.ofType('typing')).toEqual([]);
    }
    // Not a member: refused like any other access to the channel.
    const outsider = await carolSocket.request({ type: 'typing', channel_id: channel.id });
    expect(outsider).toMatchObject({ type: 'error', code: 'CHANNEL_NOT_FOUND' });
    await Promise.all([aliceTab, aliceOther, bobSocket, carolSocket].map((s) => s.close()));
  });

  it('relays typing in a direct conversation by recipient', async () => {
    const { port, app } = listening();
    const [alice, bob] = [await person(app), await person(app)];
    const aliceSocket = await connect(port, alice);
    const bobSocket = await connect(port, bob);
    const none = await aliceSocket.request({ type: 'typing', recipient_id: bob.id });
    expect(none).toMatchObject({ type: 'error', code: 'CHANNEL_NOT_FOUND' });
    const first = await send(app, alice, { recipient_id: bob.id, content: 'hi' });
    expect(await aliceSocket.request({ type: 'typing', recipient_id: bob.email })).toMatchObject({
      relayed: true,
    });
    expect(await bobSocket.waitForType('typing')).toMatchObject({
      channel_id: first.channel_id,
      user_id: alice.id,
    });
    const both = await aliceSocket.request({
      type: 'typing',
      recipient_id: bob.id,
      channel_id: first.channel_id,
    });
    expect(both).toMatchObject({ type: 'error', code: 'VALIDATION_FAILED' });
    await Promise.all([aliceSocket.close(), bobSocket.close()]);
  });
});
