// bench:ws — what the WebSocket hub costs, against a raw `ws` broadcast server (bench/servers/raw-ws.ts)
// measured in the same run. Each server and the load generator (bench/ws-load.ts) run in their own process.
//   C. (first, on a fresh server) 10,000 idle authenticated sockets (1,000 users × 10, the per-user cap):
//      the server's RSS growth per socket → rss_per_conn_kib (target ≤ 16), the time to open them →
//      connect_10k_s, failures → connect_errors (must be 0). --quick opens 2,000.
//   A. One public channel of 1,000 members, one socket each, and a sender (a second socket of a member):
//      the sender keeps `--window` messages in flight (not yet acked and delivered to every member) and
//      sends again as soon as one completes; deliveries per second at the members, app ÷ raw →
//      delivery_ratio (target ≥ 0.85). The server's event-loop delay p99 meanwhile → loop_delay_p99_ms.
//   B. The same members at 20 messages/s: latency from send to receipt at each member, p99 → p99_ms
//      (target ≤ 50) and app ÷ raw → p99_ratio (target ≤ 2).
//   D. Two app instances on the same database and Redis (REDIS_URL), members split between them, the
//      sender on the first: latency p99 as in B ÷ B's single-instance p99 → redis_p99_ratio (target ≤ 2).
//
//   npm run bench:ws                 3 rounds of 8 s for A, 20 s for B and D, 10,000 sockets (~5 minutes)
//   npm run bench:ws -- --quick      1 round of 4 s for A, 6 s for B and D, 2,000 sockets (~2 minutes)
//   --senders N  A with N senders (sockets of N members), each with its own window (default 1)
//   --window N   messages in flight per sender in A (default 16; the hub refuses more than 32)
//   --raw-only   the baseline alone (checks the load generator; no app, no targets)
//
// The app runs with production settings except: rate limits off, load shedding off (server.
// max_event_loop_delay_ms=0), ws.max_connections above the sockets opened. Its users and sessions are
// written into the database and their access tokens signed here (see lib/ws-users.ts). REDIS_URL (default
// redis://127.0.0.1:6379) is the Redis of D. MONGO_URL, when set, is the database server; otherwise the
// embedded one is started in a temporary folder. Every server shares the machine with the load generator
// (and the database): the machine's load average is printed, since other work on it moves every figure.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { MongoClient } from 'mongodb';
import { BENCH_ADMIN } from './lib/app.js';
import { parseBenchArgs } from './lib/args.js';
import { startBenchDatabase } from './lib/database.js';
import { printTable, type Cell } from './lib/report.js';
import { runBench } from './lib/run.js';
import { median, ratio, round } from './lib/stats.js';
import {
  startLoadProcess,
  type ConnectResult,
  type LatencyResult,
  type LatencySummary,
  type LoadProcess,
  type Target,
  type ThroughputResult,
} from './lib/ws-driver.js';
import type { LoopDelay } from './lib/ws-probe.js';
import { startRawWsServer, startWsApp, type ProbedServer, type WsAppServer } from './lib/ws-servers.js';
import { channelOf, checkToken, login, seedUsers, type BenchUser } from './lib/ws-users.js';

const TARGETS = {
  delivery_ratio: 0.85,
  p99_ms: 50,
  p99_ratio: 2,
  rss_per_conn_kib: 16,
  connect_errors: 0,
  redis_p99_ratio: 2,
};
const MEMBERS = 1_000;
const PER_USER = 10;
const RATE = 20;
const ADMIN = BENCH_ADMIN;
const CHANNEL = 'ws-bench';
/** Sockets opened and closed before the memory is measured (code paths compiled, pools grown). */
const WARMUP_SOCKETS = 200;

const { quick, values } = parseBenchArgs({
  'raw-only': { type: 'boolean', default: false },
  senders: { type: 'string', default: '1' },
  window: { type: 'string', default: '16' },
});
const rawOnly = values['raw-only'] === true;
const SENDERS = positive(values.senders, 'senders');
const WINDOW = positive(values.window, 'window');
const plan = quick
  ? { rounds: 1, throughputS: 4, warmupS: 1, latencyS: 6, idle: 2_000 }
  : { rounds: 3, throughputS: 8, warmupS: 2, latencyS: 20, idle: 10_000 };
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Idle sockets are spread over the members, within the app's default per-user cap.
if (plan.idle > MEMBERS * PER_USER || SENDERS > MEMBERS) throw new Error('more sockets than users allow');

ensureFileLimit(plan.idle + MEMBERS + 1_000);

type ServerName = 'raw' | 'app';

interface FanoutRound {
  round: number;
  server: ServerName;
  result: ThroughputResult;
  loop: LoopDelay;
  cpuUsPerDelivery: number;
}

interface IdleResult extends ConnectResult {
  rssBefore: number;
  rssMiddle: number;
  rssAfter: number;
  /** RSS growth per socket over the second half of the sockets. */
  kibPerSocket: number;
  /** RSS growth per socket over all of them. */
  kibPerSocketOverall: number;
  heapKibPerSocket: number;
}

await runBench('ws', async () => {
  const log = (line: string) => console.error(`[bench] ${line}`);
  console.log(
    `bench:ws ${quick ? '(quick) ' : ''}— ${plan.idle.toLocaleString('en-US')} idle sockets; ` +
      `${MEMBERS.toLocaleString('en-US')} members in one channel: fan-out ${plan.rounds} × ${plan.throughputS} s ` +
      `per server (${SENDERS} sender${SENDERS > 1 ? 's' : ''}, window ${WINDOW}), latency at ${RATE}/s for ` +
      `${plan.latencyS} s${rawOnly ? '' : ', then two instances through Redis'}`,
  );
  const load = startLoadProcess();
  const raw = await startRawWsServer();
  const secret = randomBytes(48).toString('base64url');
  const appSettings = {
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    RATE_LIMITING_ENABLED: 'false',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    WS_MAX_CONNECTIONS: String(plan.idle + MEMBERS + 100),
  };

  // ---- people, the app, the channel ----
  let users: BenchUser[] = Array.from({ length: MEMBERS }, (_, i) => ({ id: `u${i}`, email: '', token: '' }));
  let channelId = 'raw-channel';
  let adminToken = '';
  let app: WsAppServer | undefined;
  let database: Awaited<ReturnType<typeof startBenchDatabase>> | undefined;
  if (!rawOnly) {
    database = await startBenchDatabase('ws');
    // Written before the app starts: its start-up membership reconcile puts them in `general` and their
    // department channel, as it would for any company, and is over before anything is measured.
    users = await seedUsers({ database, secret, ttlS: 3600, count: MEMBERS, log });
    app = await startWsApp({ database, secret, settings: appSettings });
    const reconciled = await app.waitForLog(/channel membership(s reconciled| reconcile failed)/, 120_000);
    log(`app: ${reconciled ? reconciled.replace(/^\S+\s+/, '') : 'no membership reconcile seen in 120 s'}`);
    await checkToken(app.url(''), users[0]!);
    adminToken = await login(app.url(''), ADMIN.email, ADMIN.password);
    channelId = await channelOf({ base: app.url(''), adminToken, users, name: CHANNEL, log });
  }
  const [load1 = 0, load5 = 0] = os.loadavg();
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), load average ` +
      `${load1.toFixed(2)} / ${load5.toFixed(2)}; database: ${database?.engine ?? 'none'}; app settings: ` +
      `RATE_LIMITING_ENABLED=false MAX_EVENT_LOOP_DELAY_MS=0 WS_MAX_CONNECTIONS=${appSettings.WS_MAX_CONNECTIONS}`,
  );
  const rawTarget = (): Target => ({ url: raw.wsUrl('/ws'), label: 'raw' });
  const appTarget = (server: ProbedServer, user: BenchUser, label = 'app'): Target => ({
    url: server.wsUrl(`/api/v2/ws/${user.id}`),
    headers: { authorization: `Bearer ${user.token}` },
    label,
  });
  const servers: { name: ServerName; server: ProbedServer; target: (user: BenchUser) => Target }[] = [
    { name: 'raw', server: raw, target: rawTarget },
  ];
  if (app) servers.push({ name: 'app', server: app, target: (user) => appTarget(app, user) });

  // ---- C. idle sockets, on servers that have served nothing else yet ----
  const idle: Partial<Record<ServerName, IdleResult>> = {};
  for (const { name, server, target } of servers) {
    const targets = Array.from({ length: plan.idle }, (_, i) => target(users[i % users.length]!));
    const result = await idleSockets(load, server, name, targets, name === 'app' ? 6_500 : 500);
    idle[name] = result;
    log(
      `${name}: ${result.opened} idle sockets in ${result.seconds.toFixed(1)} s (hello after p50 ` +
        `${round1(result.p50Ms)} ms, p99 ${round1(result.p99Ms)} ms), ${round1(result.kibPerSocket)} KiB each` +
        `${result.failed ? `; ${result.failed} failed: ${JSON.stringify(result.failures)}` : ''}`,
    );
    if (result.failed && app && name === 'app') printAppProblems(app);
  }

  // ---- members and senders ----
  const connect = async (group: string, targets: Target[], server?: WsAppServer) => {
    const result = await load.run({ cmd: 'connect', group, targets, concurrency: 100, timeoutMs: 30_000 });
    log(
      `${group}: ${result.opened} of ${targets.length} sockets in ${result.seconds.toFixed(1)} s (hello after ` +
        `p50 ${round1(result.p50Ms)} ms, p99 ${round1(result.p99Ms)} ms)` +
        `${result.failed ? `; failed: ${JSON.stringify(result.failures)}` : ''}`,
    );
    if (result.failed && server) printAppProblems(server);
    return result;
  };
  for (const { name, target } of servers) {
    const members = await connect(`${name}-members`, users.map(target), app);
    const senders = await connect(`${name}-senders`, users.slice(0, SENDERS).map(target), app);
    if (members.failed || senders.failed) throw new Error(`${name}: sockets failed to open (see above)`);
  }
  await settle(
    load,
    servers.map(({ name }) => `${name}-members`),
  );

  // Every member must get every message; measured anyway, but said loudly when not.
  const checks: Record<string, LatencyResult> = {};
  const check = async (name: string, members: string, sender: string) => {
    const result = await load.run({
      cmd: 'latency',
      sender,
      members: [members],
      channelId,
      ratePerS: 10,
      warmupS: 0,
      durationS: 1,
      drainMs: 5_000,
    });
    checks[name] = result;
    const ok = result.received === result.expected && result.acked === result.sent;
    log(
      `${name} check: ${result.received} of ${result.expected} deliveries, ${result.acked} of ${result.sent} ` +
        `acks${describeProblems(result)}${ok ? '' : ' — DELIVERIES OR ACKS MISSING'}`,
    );
  };
  for (const { name } of servers) await check(name, `${name}-members`, `${name}-senders`);

  // ---- A. fan-out throughput ----
  const fanout: FanoutRound[] = [];
  for (let round = 1; round <= plan.rounds; round++) {
    for (const { name, server } of servers) {
      await server.loopDelay();
      const cpuBefore = server.cpuTime();
      const result = await load.run({
        cmd: 'throughput',
        sender: `${name}-senders`,
        members: [`${name}-members`],
        channelId,
        window: WINDOW,
        stallMs: 5_000,
        warmupS: plan.warmupS,
        durationS: plan.throughputS,
      });
      const loop = await server.loopDelay();
      const cpuAfter = server.cpuTime();
      const cpuUsPerDelivery =
        cpuBefore && cpuAfter
          ? ((cpuAfter.total - cpuBefore.total) * 1e6) / Math.max(1, result.deliveriesTotal)
          : Number.NaN;
      fanout.push({ round, server: name, result, loop, cpuUsPerDelivery });
      if (app && database && name === 'app' && hasProblems(result)) {
        printAppProblems(app);
        await diagnose(app, database, adminToken, channelId, log);
      }
      log(
        `fan-out round ${round}/${plan.rounds} ${name}: ${Math.round(result.deliveriesPerS)} deliveries/s ` +
          `(${round1(result.messagesPerS)} msg/s), loop p99 ${loop.p99Ms} ms${describeProblems(result)}`,
      );
    }
  }

  // ---- B. latency at 20 messages/s ----
  const latencies: Partial<Record<ServerName, LatencyResult>> = {};
  const loops: Partial<Record<ServerName, LoopDelay>> = {};
  for (const { name, server } of servers) {
    await server.loopDelay();
    const result = await load.run({
      cmd: 'latency',
      sender: `${name}-senders`,
      members: [`${name}-members`],
      channelId,
      ratePerS: RATE,
      warmupS: 1,
      durationS: plan.latencyS,
      drainMs: 5_000,
    });
    latencies[name] = result;
    loops[name] = await server.loopDelay();
    log(`latency ${name}: p99 ${round1(result.all.p99Ms)} ms${describeProblems(result)}`);
    if (app && database && name === 'app' && hasProblems(result)) {
      printAppProblems(app);
      await diagnose(app, database, adminToken, channelId, log);
    }
  }
  for (const { name } of servers) {
    await load.run({ cmd: 'close', group: `${name}-members` });
    await load.run({ cmd: 'close', group: `${name}-senders` });
  }

  // ---- D. two instances through Redis ----
  let cluster: { result: LatencyResult; connectFailures: number } | { error: string } | undefined;
  if (app && database) {
    await app.stop();
    const settings = { ...appSettings, REDIS_URL: redisUrl };
    const instances = await Promise.all([
      startWsApp({ database, secret, settings, name: 'app-1' }),
      startWsApp({ database, secret, settings, name: 'app-2' }),
    ]);
    for (const instance of instances) {
      const line = await instance.waitForLog(/realtime hub/, 10_000);
      log(`${instance.name}: ${line?.replace(/^\S+\s+/, '') ?? 'no realtime hub line in its log'}`);
    }
    // Their start-up work (the membership reconcile reads every user and membership) is over first.
    await waitForIdle(instances, log);
    const [first, second] = instances as [WsAppServer, WsAppServer];
    const members = await connect(
      'cluster-members',
      users.map((user, i) =>
        i % 2 === 0 ? appTarget(first, user, 'same instance') : appTarget(second, user, 'other instance'),
      ),
    );
    const sender = await connect('cluster-sender', [appTarget(first, users[0]!, 'same instance')]);
    if (members.failed || sender.failed) {
      for (const instance of instances) printAppProblems(instance);
      cluster = { error: `sockets failed to open: ${JSON.stringify(members.failures)}` };
    } else {
      await settle(load, ['cluster-members']);
      await check('cluster', 'cluster-members', 'cluster-sender');
      const result = await load.run({
        cmd: 'latency',
        sender: 'cluster-sender',
        members: ['cluster-members'],
        channelId,
        ratePerS: RATE,
        warmupS: 1,
        durationS: plan.latencyS,
        drainMs: 5_000,
      });
      log(`latency through Redis: p99 ${round1(result.all.p99Ms)} ms${describeProblems(result)}`);
      if (hasProblems(result)) for (const instance of instances) printAppProblems(instance);
      cluster = { result, connectFailures: members.failed };
    }
    await load.run({ cmd: 'close', group: 'cluster-members' });
    await load.run({ cmd: 'close', group: 'cluster-sender' });
  }
  await load.stop();

  // ---- report ----
  console.log('');
  printTable(
    [
      'C: idle sockets',
      'opened',
      'failed',
      'seconds',
      'hello p99 ms',
      'RSS MiB: before',
      'half',
      'all',
      'KiB/socket (2nd half)',
      'KiB/socket (all)',
      'heap KiB/socket (2nd half)',
    ],
    servers.map(({ name }) => {
      const r = idle[name]!;
      return [
        name,
        r.opened,
        r.failed,
        round(r.seconds, 2),
        round1(r.p99Ms),
        round1(r.rssBefore / 2 ** 20),
        round1(r.rssMiddle / 2 ** 20),
        round1(r.rssAfter / 2 ** 20),
        round(r.kibPerSocket, 2),
        round(r.kibPerSocketOverall, 2),
        round(r.heapKibPerSocket, 2),
      ];
    }),
  );
  for (const { name } of servers) {
    const r = idle[name]!;
    if (r.kibPerSocket < r.heapKibPerSocket) {
      console.log(
        `${name}: RSS grew less than the JS heap over the second half: the process gave memory back to the ` +
          'system meanwhile, so its RSS per socket is not reliable in this run (more sockets steady it)',
      );
    }
  }
  console.log('');
  printTable(
    [
      'A: fan-out',
      'round',
      'deliveries/s',
      'msg/s',
      'lost',
      'server CPU µs/delivery',
      'loop p99 ms',
      'loop max ms',
      'load gen cores',
    ],
    fanout.map((r) => [
      r.server,
      r.round,
      Math.round(r.result.deliveriesPerS),
      round1(r.result.messagesPerS),
      r.result.lost,
      round(r.cpuUsPerDelivery, 2),
      r.loop.p99Ms,
      r.loop.maxMs,
      round(r.result.loadCores, 2),
    ]),
  );
  const fanoutOf = (name: ServerName) => {
    const mine = fanout.filter((r) => r.server === name);
    return {
      deliveriesPerS: median(mine.map((r) => r.result.deliveriesPerS)),
      loopP99: median(mine.map((r) => r.loop.p99Ms)),
      cpuUs: median(mine.map((r) => r.cpuUsPerDelivery)),
      lost: mine.reduce((sum, r) => sum + r.result.lost, 0),
      errors: mine.reduce(
        (sum, r) => sum + Object.values(r.result.errorFrames).reduce((a, b) => a + b, 0),
        0,
      ),
    };
  };
  console.log('');
  const latencyRow = (name: string, r: LatencySummary, missing?: number, loop?: number): Cell[] => [
    name,
    r.samples,
    missing,
    round(r.p50Ms ?? Number.NaN, 2),
    round(r.p90Ms ?? Number.NaN, 2),
    round(r.p99Ms ?? Number.NaN, 2),
    round(r.maxMs ?? Number.NaN, 2),
    loop,
  ];
  const clusterResult = cluster && 'result' in cluster ? cluster.result : undefined;
  printTable(
    ['B/D: latency at 20/s', 'deliveries', 'missing', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'loop p99 ms'],
    [
      ...servers.map(({ name }) =>
        latencyRow(
          name,
          latencies[name]!.all,
          latencies[name]!.expected - latencies[name]!.received,
          loops[name]!.p99Ms,
        ),
      ),
      ...(clusterResult
        ? [
            latencyRow(
              'two instances + Redis',
              clusterResult.all,
              clusterResult.expected - clusterResult.received,
            ),
            ...Object.entries(clusterResult.byLabel).map(([label, s]) =>
              latencyRow(`  members on the ${label}`, s),
            ),
          ]
        : []),
    ],
  );
  if (cluster && 'error' in cluster) console.log(`D: not measured: ${cluster.error}`);

  const rawFanout = fanoutOf('raw');
  const rawLatency = latencies.raw!;
  const base = {
    raw_deliveries_per_s: Math.round(rawFanout.deliveriesPerS),
    raw_p99_ms: round(rawLatency.all.p99Ms, 2),
    raw_p50_ms: round(rawLatency.all.p50Ms, 2),
    raw_loop_delay_p99_ms: rawFanout.loopP99,
    raw_cpu_us_per_delivery: round(rawFanout.cpuUs, 2),
    raw_rss_per_conn_kib: round(idle.raw!.kibPerSocket, 2),
    members: MEMBERS,
    senders: SENDERS,
    window: WINDOW,
    rate_per_s: RATE,
    idle_connections: plan.idle,
    load_average: round(load1, 2),
    quick,
  };
  if (!app) return { ...base, raw_only: true };

  const appFanout = fanoutOf('app');
  const appLatency = latencies.app!;
  const appIdle = idle.app!;
  const clusterP99 = clusterResult?.all.p99Ms ?? Number.NaN;
  const result = {
    delivery_ratio: ratio(appFanout.deliveriesPerS, rawFanout.deliveriesPerS),
    p99_ms: round(appLatency.all.p99Ms, 2),
    p99_ratio: ratio(appLatency.all.p99Ms, rawLatency.all.p99Ms, 2),
    loop_delay_p99_ms: appFanout.loopP99,
    rss_per_conn_kib: round(appIdle.kibPerSocket, 2),
    connect_10k_s: round(appIdle.seconds, 2),
    connect_errors: appIdle.failed,
    redis_p99_ratio: ratio(clusterP99, appLatency.all.p99Ms, 2),
    app_deliveries_per_s: Math.round(appFanout.deliveriesPerS),
    app_p50_ms: round(appLatency.all.p50Ms, 2),
    app_cpu_us_per_delivery: round(appFanout.cpuUs, 2),
    app_lost_deliveries: appFanout.lost,
    app_error_frames: appFanout.errors,
    app_missing_at_20_per_s: appLatency.expected - appLatency.received,
    loop_delay_p99_ms_at_20_per_s: loops.app!.p99Ms,
    rss_per_conn_kib_overall: round(appIdle.kibPerSocketOverall, 2),
    app_heap_per_conn_kib: round(appIdle.heapKibPerSocket, 2),
    connect_hello_p99_ms: round1(appIdle.p99Ms),
    connect_failures: appIdle.failures,
    redis_p99_ms: round(clusterP99, 2),
    redis_missing: clusterResult ? clusterResult.expected - clusterResult.received : null,
    redis_p99_ms_by_member_instance: clusterResult
      ? Object.fromEntries(
          Object.entries(clusterResult.byLabel).map(([label, s]) => [label, round(s.p99Ms, 2)]),
        )
      : null,
    redis_error: cluster && 'error' in cluster ? cluster.error : null,
    check_missing: Object.fromEntries(
      Object.entries(checks).map(([name, c]) => [name, c.expected - c.received + (c.sent - c.acked)]),
    ),
    ...base,
    targets: TARGETS,
    database: database!.engine,
  };
  console.log('');
  const verdict = (key: keyof typeof TARGETS, atLeast: boolean) => {
    const value = result[key];
    const met = atLeast ? value >= TARGETS[key] : value <= TARGETS[key];
    return `${key} ${value} (target ${atLeast ? '≥' : '≤'} ${TARGETS[key]}: ${met ? 'met' : 'NOT met'})`;
  };
  console.log(
    [
      verdict('delivery_ratio', true),
      verdict('p99_ms', false),
      verdict('p99_ratio', false),
      verdict('rss_per_conn_kib', false),
      verdict('connect_errors', false),
      verdict('redis_p99_ratio', false),
      `loop_delay_p99_ms ${result.loop_delay_p99_ms} during fan-out (raw ${rawFanout.loopP99}), ` +
        `${result.loop_delay_p99_ms_at_20_per_s} at ${RATE} messages/s; ` +
        `${plan.idle.toLocaleString('en-US')} sockets opened in ${result.connect_10k_s} s`,
    ].join('\n'),
  );
  return result;
});

/**
 * Opens idle sockets in two halves and measures the server's memory after each (full GCs first). Per
 * socket is the growth over the second half: one-time costs (code compiled, pools and caches grown on the
 * first connections) and memory freed by the warm-up but not yet returned to the system both fall in the
 * first half. The growth over both halves is reported too.
 */
async function idleSockets(
  load: LoadProcess,
  server: ProbedServer,
  name: string,
  targets: Target[],
  settleMs: number,
): Promise<IdleResult> {
  const warmup = `${name}-idle-warmup`;
  const open = (group: string, slice: Target[]) =>
    load.run({ cmd: 'connect', group, targets: slice, concurrency: 100, timeoutMs: 60_000 });
  await open(warmup, targets.slice(0, WARMUP_SOCKETS));
  await load.run({ cmd: 'close', group: warmup });
  // Sockets just closed are still going away on the server side (the app says a user is offline only
  // after ws.presence_grace_ms, 5 s by default).
  await sleep(settleMs);
  const group = `${name}-idle`;
  const half = Math.floor(targets.length / 2);
  const before = await server.memory();
  const first = await open(group, targets.slice(0, half));
  await settle(load, [group]);
  await sleep(1_000);
  const middle = await server.memory();
  const second = await open(group, targets.slice(half));
  await settle(load, [group]);
  await sleep(1_000);
  const after = await server.memory();
  await load.run({ cmd: 'close', group });
  await sleep(settleMs);
  const failures = { ...first.failures };
  for (const [reason, count] of Object.entries(second.failures))
    failures[reason] = (failures[reason] ?? 0) + count;
  return {
    opened: first.opened + second.opened,
    failed: first.failed + second.failed,
    failures,
    seconds: first.seconds + second.seconds,
    p50Ms: Math.max(first.p50Ms, second.p50Ms),
    p99Ms: Math.max(first.p99Ms, second.p99Ms),
    rssBefore: before.rss,
    rssMiddle: middle.rss,
    rssAfter: after.rss,
    kibPerSocket: (after.rss - middle.rss) / 1024 / Math.max(1, second.opened),
    kibPerSocketOverall: (after.rss - before.rss) / 1024 / Math.max(1, first.opened + second.opened),
    heapKibPerSocket: (after.heapUsed - middle.heapUsed) / 1024 / Math.max(1, second.opened),
  };
}

/** Waits until each server has used under a tenth of a core for half a second (at most 60 s). */
async function waitForIdle(servers: ProbedServer[], log: (line: string) => void): Promise<void> {
  const started = performance.now();
  for (const server of servers) {
    while (performance.now() - started < 60_000) {
      const before = server.cpuTime();
      await sleep(500);
      const after = server.cpuTime();
      if (!before || !after || (after.total - before.total) / 0.5 < 0.1) break;
    }
  }
  log(`servers idle after ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Waits until the sockets have been quiet for a second (presence news after connecting). */
async function settle(load: LoadProcess, groups: string[]): Promise<void> {
  const result = await load.run({ cmd: 'quiet', groups, quietMs: 1_000, timeoutMs: 30_000 });
  console.error(
    `[bench] ${result.frames} frames while settling for ${(result.waitedMs / 1000).toFixed(1)} s` +
      `${result.quiet ? '' : ' (never quiet for a second)'}`,
  );
}

/**
 * When the app stops answering: is the database answering this process, the app its readiness probe,
 * and a REST send into the benchmark's channel and into `general` (the same service call as a socket's)?
 */
async function diagnose(
  app: WsAppServer,
  database: { url: string; name: string },
  token: string,
  channelId: string,
  log: (line: string) => void,
): Promise<void> {
  const timed = async (what: string, work: (signal: AbortSignal) => Promise<string>) => {
    const started = performance.now();
    let outcome: string;
    try {
      outcome = await work(AbortSignal.timeout(5_000));
    } catch (error) {
      outcome = `failed: ${(error as Error).message}`;
    }
    log(`diagnosis: ${what}: ${outcome} after ${Math.round(performance.now() - started)} ms`);
  };
  const client = new MongoClient(database.url, { serverSelectionTimeoutMS: 5_000, socketTimeoutMS: 5_000 });
  try {
    await timed('database ping from the benchmark', async () => {
      await client.db(database.name).command({ ping: 1 });
      return 'ok';
    });
    await timed('operations in progress (currentOp)', async () => {
      const { inprog } = (await client.db('admin').command({ currentOp: 1 })) as { inprog?: unknown[] };
      return `${inprog?.length ?? '?'}: ${JSON.stringify(inprog ?? []).slice(0, 1_500)}`;
    });
  } finally {
    await client.close().catch(() => undefined);
  }
  const request = (path: string, body?: unknown) => async (signal: AbortSignal) => {
    const response = await fetch(app.url(path), {
      method: body ? 'POST' : 'GET',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
      signal,
    });
    return `${response.status} ${(await response.text()).slice(0, 120)}`;
  };
  await timed('GET /api/v2/health/ready', request('/api/v2/health/ready'));
  await timed(
    `REST send into ${CHANNEL}`,
    request('/api/v2/messages', { channel_id: channelId, content: 'diagnosis' }),
  );
  await timed(
    'REST send into general',
    request('/api/v2/messages', { channel_id: 'general', content: 'diagnosis' }),
  );
}

/** The app's own warnings and errors, when its sockets misbehave. */
function printAppProblems(app: WsAppServer): void {
  const lines = app.logLines(/\b(WARN|ERROR|FATAL)\b/);
  console.error(
    `[bench] ${app.name}: ${lines.length} warnings/errors in its log${lines.length ? ', the last:' : ''}`,
  );
  for (const line of lines.slice(-15)) console.error(`[${app.name} log] ${line.slice(0, 400)}`);
}

function hasProblems(result: {
  errorFrames: Record<string, number>;
  closes: Record<string, number>;
  lost?: number;
  expected?: number;
  received?: number;
}): boolean {
  return (
    !!result.lost ||
    result.received !== result.expected ||
    Object.keys(result.errorFrames).length > 0 ||
    Object.keys(result.closes).length > 0
  );
}

function describeProblems(result: {
  errorFrames: Record<string, number>;
  closes: Record<string, number>;
  otherFrames: number;
  lost?: number;
}): string {
  const parts: string[] = [];
  if (result.lost) parts.push(`${result.lost} deliveries lost`);
  if (Object.keys(result.errorFrames).length)
    parts.push(`error frames ${JSON.stringify(result.errorFrames)}`);
  if (Object.keys(result.closes).length) parts.push(`closes ${JSON.stringify(result.closes)}`);
  if (result.otherFrames) parts.push(`${result.otherFrames} other frames`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function positive(value: unknown, name: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    console.error(`[bench] --${name} must be a whole number ≥ 1`);
    process.exit(2);
  }
  return number;
}

function round1(value: number): number {
  return round(value, 1);
}

/**
 * Every socket is a file descriptor in the load process and in the server. When the soft limit is too low
 * and the hard limit allows more, the benchmark runs itself again under a raised limit (children inherit it).
 */
function ensureFileLimit(needed: number): void {
  const read = (flag: string) =>
    Number(spawnSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).stdout.trim()) || Infinity;
  const soft = read('-Sn');
  if (soft >= needed) return;
  const hard = read('-Hn');
  if (hard < needed || process.env.BENCH_WS_RAISED_LIMIT) {
    console.error(`[bench] open-file limit ${soft} (hard ${hard}) is below the ${needed} sockets needed`);
    process.exit(2);
  }
  const raised = Number.isFinite(hard) ? hard : needed * 2;
  console.error(`[bench] raising the open-file limit from ${soft} to ${raised}`);
  const child = spawnSync(
    'sh',
    [
      '-c',
      `ulimit -n ${raised} && exec "$0" "$@"`,
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, BENCH_WS_RAISED_LIMIT: '1' } },
  );
  process.exit(child.status ?? 1);
}
