// The scoring engine on its own, with a controlled clock: thresholds, decay, content that never blocks,
// bans that escalate, expire and are lifted, bounded memory, and the stateful rules' counting.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { BehaviourRules } from '../../src/security/behaviour.js';
import { DetectionEngine, type SecurityEventRecord } from '../../src/security/engine.js';
import type { FiredRule } from '../../src/security/rules.js';
import { MemorySecurityStore, type Ban } from '../../src/security/store.js';

const settings = loadConfig({ env: {}, cwd: '/nonexistent' }).config.security;

function setup(overrides: Partial<typeof settings> = {}) {
  const config = { ...settings, ...overrides };
  let now = Date.UTC(2026, 10, 27, 9, 0, 0);
  const events: SecurityEventRecord[] = [];
  const alerts: SecurityEventRecord[] = [];
  const bans: Ban[] = [];
  const store = new MemorySecurityStore(
    config.score_half_life_s * 1000,
    config.offense_memory_s * 1000,
    config.max_principals,
  );
  const engine = new DetectionEngine({
    config,
    store,
    record: (event) => events.push(event),
    alert: (event) => alerts.push(event),
    banned: (ban) => bans.push(ban),
    now: () => now,
  });
  return {
    engine,
    store,
    events,
    alerts,
    bans,
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

const subject = { principal: 'ip:198.51.100.7', user_id: null, ip: '198.51.100.7' };
const sql: FiredRule[] = [{ id: 'injection.sql', where: 'query.q' }];

describe('the detection engine', () => {
  it('records at observe, alerts admins once at alert, and bans at block', async () => {
    const { engine, events, alerts, bans } = setup();
    const actions = [];
    for (let i = 0; i < 4; i++)
      actions.push((await engine.assess(subject, sql, { request_id: `r${i}` })).action);
    // 10, 20, 30, 40 against observe 10, alert 25, block 35
    expect(actions).toEqual(['observe', 'observe', 'alert', 'block']);
    expect(events.map((event) => event.action)).toEqual(['observe', 'observe', 'alert', 'block']);
    expect(events[3]).toMatchObject({
      principal: subject.principal,
      request_id: 'r3',
      rules: [{ id: 'injection.sql', category: 'injection', score: 10, where: 'query.q' }],
      score: 40,
    });
    expect(alerts.map((event) => event.action)).toEqual(['alert', 'block']);
    expect(bans).toHaveLength(1);
    expect(engine.banOf(subject.principal)).toMatchObject({ level: 1, rules: ['injection.sql'] });
  });

  it('lets scores decay: the same rules spread over hours never add up to a ban', async () => {
    const { engine, advance, bans } = setup();
    for (let i = 0; i < 20; i++) {
      await engine.assess(subject, sql, {});
      advance(settings.score_half_life_s * 1000 * 2); // a quarter left each time
    }
    expect(bans).toHaveLength(0);
  });

  it('never bans for chat content, however much of it, and records only a message that trips several families', async () => {
    const { engine, events, bans } = setup();
    const content: FiredRule[] = [{ id: 'content.sql' }, { id: 'content.xss' }];
    for (let i = 0; i < 200; i++) expect((await engine.assess(subject, content, {})).action).toBe('none');
    const polyglot: FiredRule[] = [{ id: 'content.sql' }, { id: 'content.xss' }, { id: 'content.command' }];
    expect((await engine.assess(subject, polyglot, {})).action).toBe('observe');
    expect(bans).toHaveLength(0);
    expect(events).toHaveLength(1);
  });

  it('observes the observe-only rules without adding to the score', async () => {
    const { engine } = setup();
    const decision = await engine.assess(subject, [{ id: 'anomaly.new_login_context' }], {});
    expect(decision).toMatchObject({ action: 'observe', score: 0 });
  });

  it('escalates: a second ban within the offense memory lasts twice as long, up to the maximum', async () => {
    const { engine, advance, now } = setup({ ban_base_s: 60, ban_max_s: 200 });
    const burst = async () => {
      for (let i = 0; i < 4; i++) await engine.assess(subject, sql, {});
      return engine.banOf(subject.principal)!;
    };
    const first = await burst();
    expect(first.until - now()).toBe(60_000);
    advance(61_000);
    expect(engine.banOf(subject.principal)).toBeUndefined(); // expired
    const second = await burst();
    expect(second).toMatchObject({ level: 2 });
    expect(second.until - now()).toBe(120_000);
    advance(121_000);
    const third = await burst();
    expect(third.until - now()).toBe(200_000); // capped
  });

  it('forgets offenses after the offense memory', async () => {
    const { engine, advance } = setup({ ban_base_s: 60, offense_memory_s: 600 });
    for (let i = 0; i < 4; i++) await engine.assess(subject, sql, {});
    advance(3600_000);
    for (let i = 0; i < 4; i++) await engine.assess(subject, sql, {});
    expect(engine.banOf(subject.principal)).toMatchObject({ level: 1 });
  });

  it('lifts a ban with its score and offenses; lifting nothing says so', async () => {
    const { engine } = setup();
    for (let i = 0; i < 4; i++) await engine.assess(subject, sql, {});
    expect(engine.listBans().map((ban) => ban.key)).toEqual([subject.principal]);
    expect(await engine.lift(subject.principal)).toBe(true);
    expect(engine.banOf(subject.principal)).toBeUndefined();
    expect(await engine.lift(subject.principal)).toBe(false);
    // A fresh start: one more hit is an observation, and the next ban is a first one again.
    expect((await engine.assess(subject, sql, {})).action).toBe('observe');
    for (let i = 0; i < 3; i++) await engine.assess(subject, sql, {});
    expect(engine.banOf(subject.principal)).toMatchObject({ level: 1 });
  });

  it('keeps at most max_principals scores (least recently used evicted)', async () => {
    const { store } = setup({ max_principals: 100 });
    for (let i = 0; i < 1000; i++) await store.addScore(`ip:10.0.${i >> 8}.${i & 255}`, 5, 0);
    // The first principals were evicted: their next points start from zero.
    expect(await store.addScore('ip:10.0.0.0', 5, 0)).toBe(5);
    expect(await store.addScore('ip:10.0.3.231', 5, 0)).toBe(10);
  });
});

describe('the stateful rules', () => {
  const t0 = Date.UTC(2026, 10, 27, 9, 0, 0);

  it('brute force: failures on one account beyond 5, from one address beyond 10, and 5 distinct accounts', () => {
    const rules = new BehaviourRules(15 * 60_000);
    const fired = (list: FiredRule[]) => list.map((rule) => rule.id);
    const perAccount = [];
    for (let i = 0; i < 6; i++)
      perAccount.push(fired(rules.loginFailed('ip:a', 'victim@example.com', t0 + i)));
    expect(perAccount.slice(0, 5).flat()).toEqual([]);
    expect(perAccount[5]).toEqual(['brute_force.account']);

    const stuffing = [];
    for (let i = 0; i < 5; i++)
      stuffing.push(fired(rules.loginFailed('ip:b', `user${i}@example.com`, t0 + i)));
    expect(stuffing.slice(0, 4).flat()).toEqual([]);
    expect(stuffing[4]).toEqual(['brute_force.credential_stuffing']);
    // One address failing on many attempts at one account it keeps guessing: past 10, the address rule.
    const perAddress = [];
    for (let i = 0; i < 11; i++) perAddress.push(fired(rules.loginFailed('ip:c', 'one@example.com', t0 + i)));
    expect(perAddress[9]).toEqual(['brute_force.account']);
    expect(perAddress[10]).toEqual(['brute_force.account', 'brute_force.ip']);
    // Outside the window it starts again.
    expect(fired(rules.loginFailed('ip:b', 'user9@example.com', t0 + 16 * 60_000))).toEqual([]);
  });

  it('enumeration, scanning bursts, DM spam, churn and malformed frames fire only past their counts', () => {
    const rules = new BehaviourRules(15 * 60_000);
    const count = (hit: (i: number) => FiredRule[], times: number) => {
      let firstAt = -1;
      for (let i = 0; i < times; i++) if (hit(i).length > 0 && firstAt < 0) firstAt = i + 1;
      return firstAt;
    };
    expect(count(() => rules.lookupMissed('user:u', t0), 20)).toBe(16);
    expect(count(() => rules.routeMissed('ip:s', t0), 40)).toBe(31);
    expect(count((i) => rules.directMessage('u1', `r${i}`, t0 + i), 12)).toBe(10);
    // The same recipients again are not new people.
    expect(count(() => rules.directMessage('u2', 'same', t0), 50)).toBe(-1);
    expect(count(() => rules.socketOpened('user:c', t0), 25)).toBe(21);
    expect(count(() => rules.badFrame('user:f', t0), 10)).toBe(6);
    expect(count(() => rules.badToken('ip:t', t0), 10)).toBe(4);
  });

  it("request rate: a burst far above the user's own baseline fires once per 10-second slot", () => {
    const rules = new BehaviourRules(15 * 60_000);
    // Ten minutes of a steady 20 requests per slot: never unusual.
    let fired = 0;
    for (let slot = 0; slot < 60; slot++)
      for (let i = 0; i < 20; i++) fired += rules.request('steady', t0 + slot * 10_000 + i).length;
    expect(fired).toBe(0);
    // Then 300 in one slot: far above 10 × 20 and the floor of 100.
    let burst = 0;
    for (let i = 0; i < 300; i++) burst += rules.request('steady', t0 + 60 * 10_000 + i).length;
    expect(burst).toBe(1);
  });
});
