// The detection plugin in the running app, over real HTTP requests (inject, each attacker its own
// address) and real sockets: rules firing and not firing, thresholds, bans refused over HTTP and
// WebSocket, offices behind one address, alerts to admins, the admin security API, and the logs.
import fs from 'node:fs';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { SecurityEventRecord } from '../../src/security/engine.js';
import { call, ok, person, type Person } from '../conversations/fixtures.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, bearer, loginOk } from '../identity/fixtures.js';
import { connect, rawSocket, wsUrl } from '../realtime/client.js';
import { useListeningApp } from '../realtime/fixtures.js';

const listening = useListeningApp({ security: { alert_score: 25, block_score: 35 } });

let addressCounter = 0;
/** Every attacker gets an address of its own (TEST-NET-2), so tests never share a score. */
const freshAddress = () => `198.51.100.${++addressCounter}`;

function from(address: string, options: InjectOptions) {
  return listening().app.inject({ ...options, remoteAddress: address });
}

async function eventsOf(principal: string): Promise<SecurityEventRecord[]> {
  const { app } = listening();
  await app.detection!.settled();
  return app.db
    .collection<SecurityEventRecord>('security_events')
    .find({ principal })
    .sort({ _id: 1 })
    .toArray();
}

const ruleIds = (events: SecurityEventRecord[]) => [
  ...new Set(events.flatMap((event) => event.rules.map((rule) => rule.id))),
];

async function admin(): Promise<Person> {
  const { app } = listening();
  const tokens = await loginOk(app, ADMIN_EMAIL, ADMIN_PASSWORD);
  return {
    id: tokens.user.id,
    email: ADMIN_EMAIL,
    name: tokens.user.name,
    token: tokens.access_token,
    headers: bearer(tokens.access_token),
  };
}

describe('scoring and banning an address', () => {
  it('observes, alerts, then bans: 403 BLOCKED with retry_after for its unauthenticated requests only', async () => {
    const { app, port } = listening();
    const boss = await admin();
    const adminSocket = await connect(port, boss);
    const address = freshAddress();
    const colleague = await person(app);
    const attack = { method: 'GET' as const, url: "/api/v2/users?department=' OR '1'='1" };

    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await from(address, attack)).statusCode);
    // Judged before authentication: 401 while below the block score, 403 for the request that reaches it.
    expect(statuses).toEqual([401, 401, 401, 403]);

    const refused = await from(address, {
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: 'a@b.co', password: 'x' },
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'BLOCKED', retry_after: 300 });
    expect(refused.headers['retry-after']).toBe('300');

    // The colleague behind the same address is signed in: judged as themself, not refused.
    const colleagueCall = await from(address, {
      method: 'GET',
      url: '/api/v2/channels',
      headers: colleague.headers,
    });
    expect(colleagueCall.statusCode).toBe(200);
    // Other addresses are untouched.
    expect((await from(freshAddress(), attack)).statusCode).toBe(401);

    const events = await eventsOf(`ip:${address}`);
    expect(events.map((event) => event.action)).toEqual(['observe', 'observe', 'alert', 'block']);
    expect(events[3]).toMatchObject({
      ip: address,
      method: 'GET',
      path: '/api/v2/users',
      rules: [{ id: 'injection.sql', category: 'injection', score: 10, where: 'query.department' }],
    });
    expect(events[3]!.request_id).toBeTruthy();
    expect(events[3]!.ban_until).toBeInstanceOf(Date);

    // Admins were told, once at alert and once at block.
    const alert = await adminSocket.waitForType('security_alert', (frame) => frame.action === 'block');
    expect(alert).toMatchObject({ principal: `ip:${address}`, rules: ['injection.sql'] });
    expect(
      adminSocket.ofType('security_alert').filter((frame) => frame.principal === `ip:${address}`),
    ).toHaveLength(2);
    await adminSocket.close();
  });

  it('lets an admin see the ban and lift it (audited); the address is served again', async () => {
    const address = freshAddress();
    for (let i = 0; i < 4; i++) await from(address, { method: 'GET', url: '/api/v2/.env' });
    const boss = await admin();
    const { app } = listening();
    const blocks = await ok<{
      blocks: { key: string; level: number; rules: string[]; retry_after: number }[];
    }>(call(app, boss, 'GET', '/admin/security/blocks'));
    const ban = blocks.blocks.find((entry) => entry.key === `ip:${address}`);
    expect(ban).toMatchObject({ level: 1, rules: ['reconnaissance.probe_path'] });
    expect(ban!.retry_after).toBeGreaterThan(250);

    const member = await person(app);
    const forbidden = await call(
      app,
      member,
      'DELETE',
      `/admin/security/blocks/${encodeURIComponent(`ip:${address}`)}`,
    );
    expect(forbidden.statusCode).toBe(403);
    expect((await from(address, { method: 'GET', url: '/api/v2/health/live' })).statusCode).toBe(403);

    const lifted = await call(
      app,
      boss,
      'DELETE',
      `/admin/security/blocks/${encodeURIComponent(`ip:${address}`)}`,
    );
    expect(lifted.statusCode).toBe(204);
    expect((await from(address, { method: 'GET', url: '/api/v2/health/live' })).statusCode).toBe(200);
    const again = await call(
      app,
      boss,
      'DELETE',
      `/admin/security/blocks/${encodeURIComponent(`ip:${address}`)}`,
    );
    expect(again.json()).toMatchObject({ statusCode: 404, code: 'BLOCK_NOT_FOUND' });
    expect((await call(app, boss, 'DELETE', '/admin/security/blocks/nonsense')).json()).toMatchObject({
      code: 'VALIDATION_FAILED',
    });

    await app.audit.flush();
    const audit = await app.db
      .collection('audit')
      .find({ target_id: `ip:${address}` })
      .toArray();
    expect(audit.map((record) => record.action).sort()).toEqual(['security.ban', 'security.unban']);
  });
});

describe('scoring a signed-in user', () => {
  it('bans the user, not the address: refused over HTTP and closed with 4429 over WebSocket', async () => {
    const { app, port } = listening();
    const mallory = await person(app);
    const socket = await connect(port, mallory);
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await call(app, mallory, 'GET', '/channels/..%2F..%2Fetc%2Fpasswd')).statusCode);
    expect(statuses.slice(0, 3)).not.toContain(403);
    expect(statuses[3]).toBe(403);
    expect(await socket.closed).toBe(4429);

    const refused = await call(app, mallory, 'GET', '/channels');
    expect(refused.json()).toMatchObject({ statusCode: 403, code: 'BLOCKED' });
    const reconnect = rawSocket(wsUrl(port, mallory.id), mallory.headers);
    expect(await reconnect.closed).toBe(4429);
    // Others on the same address carry on.
    const bystander = await person(app);
    await ok(call(app, bystander, 'GET', '/channels'));

    const events = await eventsOf(`user:${mallory.id}`);
    expect(events.at(-1)).toMatchObject({ action: 'block', user_id: mallory.id });
    expect(ruleIds(events)).toEqual(['traversal.path']);
  });

  it('scores frames: injection in a structural field, malformed and oversized frames; a banned user is cut off', async () => {
    const { app, port } = listening();
    const eve = await person(app);
    const socket = await connect(port, eve);
    // The frames still run (and answer on their own terms): scoring never holds a frame up.
    for (let i = 0; i < 3; i++) await socket.request({ type: 'typing', channel_id: "general' OR 1=1--" });
    for (let i = 0; i < 6; i++) socket.sendRaw('{not json');
    await socket.waitFor((frame) => frame.type === 'error' && socket.ofType('error').length >= 7);
    let events = await eventsOf(`user:${eve.id}`);
    expect(events[0]).toMatchObject({ connection_id: expect.any(String), frame: 1, frame_type: 'typing' });
    expect(ruleIds(events)).toEqual(expect.arrayContaining(['injection.sql', 'protocol.malformed_frame']));

    socket.sendRaw('x'.repeat(70 * 1024)); // over WS_MAX_FRAME (64 KiB): closed 1009, and scored
    expect(await socket.closed).toBe(1009);
    events = await eventsOf(`user:${eve.id}`);
    expect(ruleIds(events)).toContain('protocol.oversized_frame');
    expect(events.at(-1)!.action).toBe('block'); // 3 × 10 + 3 + 10: over 35 by now
    expect(await rawSocket(wsUrl(port, eve.id), eve.headers).closed).toBe(4429);
  });

  it('scores what a socket upgrade carries in its URL, as its user once authenticated', async () => {
    const { app, port } = listening();
    const user = await person(app);
    const socket = rawSocket(
      wsUrl(port, user.id, `note=${encodeURIComponent("1' UNION SELECT password FROM users--")}`),
      user.headers,
    );
    await socket.waitForType('hello');
    const events = await eventsOf(`user:${user.id}`);
    expect(events).toMatchObject([
      {
        action: 'observe',
        path: `/api/v2/ws/${user.id}`,
        rules: [{ id: 'injection.sql', where: 'query.note' }],
      },
    ]);
    await socket.close();
  });

  it('chat content full of code, SQL, shell and HTML never blocks its author', async () => {
    const { app, port } = listening();
    const dev = await person(app);
    const socket = await connect(port, dev);
    const snippets = [
      "SELECT * FROM users WHERE email = '' OR 1=1; -- classic",
      '<script>alert(document.cookie)</script> is what the scanner flagged',
      'run `rm -rf ./build && npm ci`, then `cat /etc/hosts | grep api`',
      'the path was ../../config/secrets.yaml; use {"$gt": ""} in mongosh to see it',
    ];
    for (let i = 0; i < 40; i++) {
      const content = snippets[i % snippets.length]!;
      if (i % 2) await ok(call(app, dev, 'POST', '/messages', { channel_id: 'general', content }), 201);
      else
        expect((await socket.request({ type: 'chat_message', channel_id: 'general', content })).type).toBe(
          'ack',
        );
    }
    await ok(call(app, dev, 'GET', '/channels'));
    expect(app.detection!.engine.banOf(`user:${dev.id}`)).toBeUndefined();
    const events = await eventsOf(`user:${dev.id}`);
    expect(events.filter((event) => event.action !== 'observe')).toEqual([]);
    await socket.close();
  });
});

describe('the rules, through the app', () => {
  it('NoSQL operators in a login body, a scanner agent, a probe path', async () => {
    const nosql = freshAddress();
    const login = await from(nosql, {
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: { $ne: null }, password: { $gt: '' } },
    });
    expect(login.statusCode).toBe(400);
    expect(ruleIds(await eventsOf(`ip:${nosql}`))).toEqual(['injection.nosql_operator']);

    const scanner = freshAddress();
    await from(scanner, {
      method: 'GET',
      url: '/api/v2/health/live',
      headers: { 'user-agent': 'sqlmap/1.7.2#stable (https://sqlmap.org)' },
    });
    expect(ruleIds(await eventsOf(`ip:${scanner}`))).toEqual(['reconnaissance.scanner_agent']);

    const prober = freshAddress();
    expect((await from(prober, { method: 'GET', url: '/.git/config' })).statusCode).toBe(404);
    expect(ruleIds(await eventsOf(`ip:${prober}`))).toEqual(['reconnaissance.probe_path']);

    // Nothing for ordinary requests from an ordinary browser.
    const browser = freshAddress();
    const agent = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36';
    await from(browser, { method: 'GET', url: '/api/v2/health', headers: { 'user-agent': agent } });
    await from(browser, {
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: "o'brien@example.com", password: 'not it' },
    });
    expect(await eventsOf(`ip:${browser}`)).toEqual([]);
  });

  it('token abuse: alg none at once, forged tokens when they repeat', async () => {
    const forged = freshAddress();
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'x', sid: 'y' })).toString('base64url');
    const none = await from(forged, {
      method: 'GET',
      url: '/api/v2/channels',
      headers: { authorization: `Bearer ${header}.${payload}.` },
    });
    expect(none.statusCode).toBe(401);
    expect(ruleIds(await eventsOf(`ip:${forged}`))).toEqual(['protocol.jwt_alg_none']);

    const guesser = freshAddress();
    for (let i = 0; i < 3; i++)
      await from(guesser, {
        method: 'GET',
        url: '/api/v2/channels',
        headers: { authorization: `Bearer a.b.c${i}` },
      });
    expect(await eventsOf(`ip:${guesser}`)).toEqual([]); // a stale token or two is normal
    for (let i = 0; i < 3; i++)
      await from(guesser, {
        method: 'GET',
        url: '/api/v2/channels',
        headers: { authorization: `Bearer a.b.d${i}` },
      });
    expect(ruleIds(await eventsOf(`ip:${guesser}`))).toEqual(['brute_force.bad_token']);
  });

  it('brute force on one account, and credential stuffing across accounts', async () => {
    const { app } = listening();
    const victim = await person(app);
    const attacker = freshAddress();
    for (let i = 0; i < 7; i++)
      await from(attacker, {
        method: 'POST',
        url: '/api/v2/auth/login',
        payload: { email: victim.email, password: `guess-${i}` },
      });
    expect(ruleIds(await eventsOf(`ip:${attacker}`))).toEqual(['brute_force.account']);

    const stuffer = freshAddress();
    for (let i = 0; i < 6; i++)
      await from(stuffer, {
        method: 'POST',
        url: '/api/v2/auth/login',
        payload: { email: `leaked${i}@example.com`, password: 'Summer2026!' },
      });
    expect(ruleIds(await eventsOf(`ip:${stuffer}`))).toEqual(['brute_force.credential_stuffing']);
  });

  it('a replayed refresh token scores the address that replayed it, not its owner', async () => {
    const { app } = listening();
    const password = 'Quartz-Replay-Pylon-4417';
    const owner = await person(app, { password });
    const thief = freshAddress();
    const first = await from(thief, {
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: owner.email, password },
    });
    const stolen = first.json().refresh_token as string;
    expect(
      (
        await from(freshAddress(), {
          method: 'POST',
          url: '/api/v2/auth/refresh',
          payload: { refresh_token: stolen },
        })
      ).statusCode,
    ).toBe(200);
    const replay = await from(thief, {
      method: 'POST',
      url: '/api/v2/auth/refresh',
      payload: { refresh_token: stolen },
    });
    expect(replay.statusCode).toBe(401);
    expect(ruleIds(await eventsOf(`ip:${thief}`))).toEqual(['brute_force.refresh_reuse']);
    // The owner only shows the (observe-only) login from a new address.
    expect(ruleIds(await eventsOf(`user:${owner.id}`))).toEqual(['anomaly.new_login_context']);
  });

  it('socket churn: a user opening sockets beyond 20 a minute', async () => {
    const { app, port } = listening();
    const churner = await person(app);
    // 5 points from the 21st on: the 23rd takes the score past 10 (observe) whatever decay did meanwhile.
    for (let i = 0; i < 23; i++) {
      const socket = await connect(port, churner);
      await socket.close();
      if (i === 19) expect(await eventsOf(`user:${churner.id}`)).toEqual([]);
    }
    expect(ruleIds(await eventsOf(`user:${churner.id}`))).toEqual(['flood.ws_churn']);
  });

  it('enumeration: a burst of channel lookups that miss', async () => {
    const { app } = listening();
    const curious = await person(app);
    for (let i = 0; i < 15; i++) await call(app, curious, 'GET', `/channels/nope-${i}`);
    expect(await eventsOf(`user:${curious.id}`)).toEqual([]);
    for (let i = 15; i < 18; i++) await call(app, curious, 'GET', `/channels/nope-${i}`);
    expect(ruleIds(await eventsOf(`user:${curious.id}`))).toEqual(['enumeration.not_found']);
  });

  it('DM spam: one user writing to ten different people within minutes', async () => {
    const { app } = listening();
    const spammer = await person(app);
    const people = await Promise.all(Array.from({ length: 10 }, () => person(app)));
    for (const [i, recipient] of people.entries()) {
      await ok(
        call(app, spammer, 'POST', '/messages', { recipient_id: recipient.id, content: `great offer ${i}` }),
        201,
      );
      if (i === 8) expect(await eventsOf(`user:${spammer.id}`)).toEqual([]);
    }
    expect(ruleIds(await eventsOf(`user:${spammer.id}`))).toEqual(['flood.dm_spam']);
  });

  it('a login from an address and agent never seen for the user is observed, never blocked', async () => {
    const { app } = listening();
    const password = 'Quartz-Travel-Pylon-7731';
    const traveller = await person(app, { password }); // logs in once, from 127.0.0.1 with inject's agent
    const loginFrom = (address: string, agent: string) =>
      from(address, {
        method: 'POST',
        url: '/api/v2/auth/login',
        headers: { 'user-agent': agent },
        payload: { email: traveller.email, password },
      });
    expect((await loginFrom('127.0.0.1', 'lightMyRequest')).statusCode).toBe(200);
    expect(await eventsOf(`user:${traveller.id}`)).toEqual([]);
    expect((await loginFrom(freshAddress(), 'curl/8.5.0')).statusCode).toBe(200);
    const events = await eventsOf(`user:${traveller.id}`);
    expect(events).toMatchObject([
      { action: 'observe', score: 0, rules: [{ id: 'anomaly.new_login_context' }] },
    ]);
  });
});

describe('GET /admin/security/events', () => {
  it('filters by principal, action and rule, pages newest first, and refuses bad input', async () => {
    const { app } = listening();
    const boss = await admin();
    const address = freshAddress();
    for (let i = 0; i < 3; i++)
      await from(address, { method: 'GET', url: `/api/v2/users?q=x&department=1%27%20OR%201%3D1--${i}` });
    const page = await ok<{
      events: { id: string; action: string; principal: string }[];
      has_more: boolean;
      next_before: string | null;
    }>(
      call(app, boss, 'GET', '/admin/security/events', undefined, { principal: `ip:${address}`, limit: '2' }),
    );
    expect(page.events.map((event) => event.action)).toEqual(['alert', 'observe']);
    expect(page.has_more).toBe(true);
    const rest = await ok<{ events: { action: string }[]; has_more: boolean }>(
      call(app, boss, 'GET', '/admin/security/events', undefined, {
        principal: `ip:${address}`,
        before: page.next_before!,
      }),
    );
    expect(rest).toMatchObject({ events: [{ action: 'observe' }], has_more: false });
    const alerts = await ok<{ events: { principal: string }[] }>(
      call(app, boss, 'GET', '/admin/security/events', undefined, {
        action: 'alert',
        rule: 'injection.sql',
        principal: `ip:${address}`,
      }),
    );
    expect(alerts.events).toHaveLength(1);

    const bad: Record<string, string>[] = [
      { limit: '0' },
      { limit: '500' },
      { action: 'panic' },
      { rule: 'no.such.rule' },
      { principal: 'bob' },
      { since: 'yesterday' },
      { before: 'zzz' },
    ];
    for (const query of bad) {
      const response = await call(app, boss, 'GET', '/admin/security/events', undefined, query);
      expect(response.json(), JSON.stringify(query)).toMatchObject({
        statusCode: 400,
        code: 'VALIDATION_FAILED',
      });
    }
  });

  it('security.log carries each event as JSON, and never a password', async () => {
    const { app, testApp } = listening();
    const address = freshAddress();
    await from(address, {
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: "x' OR 1=1--@example.com", password: 'Hunter2-secret-pw' },
    });
    await app.detection!.settled();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the file transport writes asynchronously
    const file = fs.readdirSync(testApp.logDir).find((name) => name.startsWith('security'));
    const text = fs.readFileSync(path.join(testApp.logDir, file!), 'utf8');
    const line = text.split('\n').find((entry) => entry.includes(`ip:${address}`));
    expect(line).toBeDefined();
    expect(line).toContain('injection.sql');
    expect(text).not.toContain('Hunter2-secret-pw');
  });
});
