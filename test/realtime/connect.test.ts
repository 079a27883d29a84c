// Opening a socket: credentials (ticket or bearer), whose socket it is, origins, caps, hello, and the
// close codes a client acts on.
import { describe, expect, it } from 'vitest';
import { call, person } from '../conversations/fixtures.js';
import { connect, rawSocket, upgradeRefusal, wsUrl } from './client.js';
import { useListeningApp } from './fixtures.js';

const listening = useListeningApp({
  ws: { max_per_user: 2 },
  server: { cors_origins: ['https://chat.example.com'] },
});

async function ticketFor(who: Awaited<ReturnType<typeof person>>): Promise<string> {
  const response = await call(listening().app, who, 'POST', '/ws/ticket');
  expect(response.statusCode).toBe(200);
  const body = response.json<{ ticket: string; expires_in: number }>();
  expect(body.expires_in).toBe(30);
  return body.ticket;
}

describe('connecting to the hub', () => {
  it('says hello to a bearer-authenticated socket', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const socket = await connect(port, alice);
    const hello = socket.frames[0]!;
    expect(hello).toMatchObject({ type: 'hello', user_id: alice.id, heartbeat_ms: 30_000 });
    expect(typeof hello.connection_id).toBe('string');
    expect(Number.isNaN(Date.parse(String(hello.server_time)))).toBe(false);
    await socket.close();
  });

  it('accepts a ticket once, and the user by email', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const ticket = await ticketFor(alice);
    const first = rawSocket(wsUrl(port, alice.email.toUpperCase(), `ticket=${ticket}`));
    await first.waitForType('hello');
    const again = rawSocket(wsUrl(port, alice.id, `ticket=${ticket}`));
    expect(await again.closed).toBe(4401);
    await first.close();
  });

  it('answers a malformed upgrade with 400 before it uses up the ticket', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const ticket = await ticketFor(alice);
    expect(await upgradeRefusal(wsUrl(port, 'x'.repeat(300), `ticket=${ticket}`))).toBe(400);
    const socket = rawSocket(wsUrl(port, alice.id, `ticket=${ticket}`));
    await socket.waitForType('hello');
    await socket.close();
  });

  it('closes 4401 without a credential, with a bad token or an unknown ticket', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    expect(await rawSocket(wsUrl(port, alice.id)).closed).toBe(4401);
    expect(await rawSocket(wsUrl(port, alice.id), { authorization: 'Bearer not.a.token' }).closed).toBe(4401);
    expect(await rawSocket(wsUrl(port, alice.id, 'ticket=nope')).closed).toBe(4401);
  });

  it("closes 4403 on someone else's socket, whatever the credential", async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const bob = await person(app);
    expect(await rawSocket(wsUrl(port, bob.id), alice.headers).closed).toBe(4403);
    const ticket = await ticketFor(alice);
    expect(await rawSocket(wsUrl(port, bob.email, `ticket=${ticket}`)).closed).toBe(4403);
  });

  it('refuses a foreign Origin before the upgrade, and allows listed and same origins', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    expect(
      await upgradeRefusal(wsUrl(port, alice.id), { ...alice.headers, origin: 'https://evil.example' }),
    ).toBe(403);
    const listed = await connect(port, alice, { origin: 'https://chat.example.com' });
    const same = await connect(port, alice, { origin: `http://127.0.0.1:${port}` });
    await Promise.all([listed.close(), same.close()]);
  });

  it('caps the tabs of one user with 1013, and frees the place when one closes', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const first = await connect(port, alice);
    const second = await connect(port, alice);
    const third = rawSocket(wsUrl(port, alice.id), alice.headers);
    expect(await third.closed).toBe(1013);
    await first.close();
    const again = await connect(port, alice);
    await Promise.all([second.close(), again.close()]);
  });

  it('closes a revoked session within a second (4401)', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const socket = await connect(port, alice);
    let closedAt = 0;
    void socket.closed.then(() => (closedAt = Date.now()));
    const logout = await call(app, alice, 'POST', '/auth/logout');
    expect(logout.statusCode).toBeLessThan(300);
    const answeredAt = Date.now();
    expect(await socket.closed).toBe(4401);
    // The revocation closes the socket as it happens, not on a later check (those run every 30 s).
    expect(closedAt - answeredAt).toBeLessThan(1000);
  });

  it('closes every socket of a user an admin disables (4401)', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const admin = await person(app, { roles: ['admin'] });
    const [tab1, tab2] = [await connect(port, alice), await connect(port, alice)];
    const disabled = await call(app, admin, 'PATCH', `/admin/users/${alice.id}`, { disabled: true });
    expect(disabled.statusCode).toBe(200);
    expect(await tab1.closed).toBe(4401);
    expect(await tab2.closed).toBe(4401);
    expect(await rawSocket(wsUrl(port, alice.id), alice.headers).closed).toBe(4401);
  });

  it('refuses a frame over the size limit with 1009', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const socket = await connect(port, alice);
    socket.sendRaw(JSON.stringify({ type: 'ping', pad: 'x'.repeat(70 * 1024) }));
    expect(await socket.closed).toBe(1009);
  });
});
