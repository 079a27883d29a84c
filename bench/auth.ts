// bench:auth — what authentication costs. Two measurements on the full app (production settings) in its own
// process, in the same run:
//   1. Password hashing must not stall other requests: p99 of a cheap authenticated GET (GET
//      /api/v2/auth/session at a fixed rate) with logins running at a steady rate, versus without them.
//      Target: p99_ratio ≤ 2.
//   2. Checking a token (JWT verify + session check, cached for up to a second) costs at most 10% of the
//      bench:http route: the server's CPU time per request of GET /api/v2/health/live at full speed, versus
//      the time `auth.authenticate(token)` takes per call in an app built in this process on the same
//      database. Target: auth_cost_share ≤ 0.10. (An HTTP comparison of an authenticated route with the
//      probe would also count the authenticated route's access-log line, which probes do not write; its
//      ratio is printed for information.)
//
//   npm run bench:auth               longer phases
//   npm run bench:auth -- --quick    under a minute
import { parseBenchArgs } from './lib/args.js';
import { BENCH_ADMIN, startAppServer } from './lib/app.js';
import { startBenchDatabase } from './lib/database.js';
import { runLoad, runLoadOn, type LoadResult, type ServerCpu } from './lib/load.js';
import { loadConfig } from '../src/config/index.js';
import { buildServer } from '../src/server.js';
import { makeTempDir } from './lib/cleanup.js';
import type { BenchDatabase } from './lib/database.js';
import { printTable } from './lib/report.js';
import { runBench } from './lib/run.js';
import { median, ratio, round } from './lib/stats.js';

const P99_TARGET = 2;
const COST_SHARE_TARGET = 0.1;
const AUTH_CALLS = 200_000;
const ADMIN = BENCH_ADMIN;
const CHEAP_ROUTE = '/api/v2/auth/session';
const PUBLIC_ROUTE = '/api/v2/health/live';

const { quick } = parseBenchArgs();
const plan = quick
  ? { latencyS: 6, rounds: 2, throughputS: 4, getRate: 200, loginRate: 10 }
  : { latencyS: 15, rounds: 3, throughputS: 10, getRate: 200, loginRate: 10 };

await runBench('auth', async () => {
  console.log(
    `bench:auth ${quick ? '(quick) ' : ''}— GET ${CHEAP_ROUTE} at ${plan.getRate}/s for ${plan.latencyS} s, ` +
      `alone and with ${plan.loginRate} logins/s (${plan.rounds} rounds each); then throughput of ` +
      `${CHEAP_ROUTE} versus ${PUBLIC_ROUTE} for ${plan.throughputS} s each (${plan.rounds} rounds)`,
  );
  const database = await startBenchDatabase('auth');
  const app = await startAppServer({
    database,
    settings: {
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      // All logins come from this one address: keep the per-address failure guard out of the way.
      IP_MAX_LOGIN_FAILURES: '1000000',
    },
  });
  const login = await fetch(app.url('/api/v2/auth/login'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${await login.text()}`);
  const { access_token: token } = (await login.json()) as { access_token: string };
  const authorization = { authorization: `Bearer ${token}` };

  const cheapGet = (durationS: number, rate?: number) =>
    runLoad({
      url: app.url(CHEAP_ROUTE),
      headers: authorization,
      durationS,
      connections: 10,
      ...(rate ? { overallRate: rate } : {}),
    });
  const logins = (durationS: number) =>
    runLoad({
      url: app.url('/api/v2/auth/login'),
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ADMIN),
      durationS,
      connections: 4,
      overallRate: plan.loginRate,
    });

  await cheapGet(2); // warm-up: JIT, connection pool, session cache
  await logins(2);

  // 1. Latency under login load.
  const quiet: LoadResult[] = [];
  const loaded: LoadResult[] = [];
  const loginRuns: LoadResult[] = [];
  for (let n = 0; n < plan.rounds; n++) {
    quiet.push(await cheapGet(plan.latencyS, plan.getRate));
    const [get, login] = await Promise.all([cheapGet(plan.latencyS, plan.getRate), logins(plan.latencyS)]);
    loaded.push(get);
    loginRuns.push(login);
  }
  printTable(
    ['phase', 'round', 'GET req/s', 'GET p50 ms', 'GET p99 ms', 'logins/s', 'login p99 ms', 'non-2xx'],
    [
      ...quiet.map((r, i) => [
        'alone',
        i + 1,
        round(r.rps),
        r.latencyP50Ms,
        r.latencyP99Ms,
        0,
        undefined,
        r.non2xx,
      ]),
      ...loaded.map((r, i) => [
        'with logins',
        i + 1,
        round(r.rps),
        r.latencyP50Ms,
        r.latencyP99Ms,
        round(loginRuns[i]!.rps, 1),
        loginRuns[i]!.latencyP99Ms,
        r.non2xx + loginRuns[i]!.non2xx,
      ]),
    ],
  );
  const p99Quiet = median(quiet.map((r) => r.latencyP99Ms));
  const p99Loaded = median(loaded.map((r) => r.latencyP99Ms));

  // 2. Cost of authentication per request, against the bench:http route's CPU cost per request.
  const publicRuns: (LoadResult & { cpu: ServerCpu | undefined })[] = [];
  const authRuns: LoadResult[] = [];
  await runLoad({ url: app.url(PUBLIC_ROUTE), durationS: 2 });
  for (let n = 0; n < plan.rounds; n++) {
    publicRuns.push(await runLoadOn(app, { url: app.url(PUBLIC_ROUTE), durationS: plan.throughputS }));
    authRuns.push(
      await runLoad({ url: app.url(CHEAP_ROUTE), headers: authorization, durationS: plan.throughputS }),
    );
  }
  printTable(
    ['route', 'round', 'req/s', 'p99 ms', 'server CPU µs/req', 'non-2xx'],
    [
      ...publicRuns.map((r, i) => [
        `GET ${PUBLIC_ROUTE} (public)`,
        i + 1,
        round(r.rps),
        r.latencyP99Ms,
        r.cpu ? round(r.cpu.usPerRequest, 1) : undefined,
        r.non2xx,
      ]),
      ...authRuns.map((r, i) => [
        `GET ${CHEAP_ROUTE} (authenticated, logged)`,
        i + 1,
        round(r.rps),
        r.latencyP99Ms,
        undefined,
        r.non2xx,
      ]),
    ],
  );
  const publicRps = median(publicRuns.map((r) => r.rps));
  const authRps = median(authRuns.map((r) => r.rps));
  const routeCpuUs = median(publicRuns.map((r) => r.cpu?.usPerRequest ?? Number.NaN));
  const authUs = await measureAuthenticate(database);
  console.log(
    `auth.authenticate(token): ${round(authUs, 2)} µs per call (token and session checks cached as in production)`,
  );
  const errors = [...quiet, ...loaded, ...loginRuns, ...publicRuns, ...authRuns].reduce(
    (sum, r) => sum + r.non2xx + r.errors,
    0,
  );

  const result = {
    p99_ratio: ratio(p99Loaded, p99Quiet, 2),
    p99_alone_ms: p99Quiet,
    p99_with_logins_ms: p99Loaded,
    logins_per_s: round(median(loginRuns.map((r) => r.rps)), 1),
    auth_cost_share: ratio(authUs, routeCpuUs),
    auth_cost_us: round(authUs, 2),
    route_cpu_us_per_request: round(routeCpuUs, 1),
    authenticated_route_throughput_ratio: ratio(authRps, publicRps),
    auth_rps: round(authRps),
    public_rps: round(publicRps),
    non_2xx_or_errors: errors,
    targets: { p99_ratio: P99_TARGET, auth_cost_share: COST_SHARE_TARGET },
    database: database.engine,
    quick,
  };
  console.log(
    `p99 with logins ÷ alone = ${result.p99_ratio} (target ≤ ${P99_TARGET}); ` +
      `authentication = ${result.auth_cost_share} of the bench:http route's CPU per request (target ≤ ${COST_SHARE_TARGET})`,
  );
  return result;
});

/**
 * Microseconds per `auth.authenticate(token)` in a steady state: an app built in this process on the
 * benchmark's database (its own secret, so it logs in for its own token).
 */
async function measureAuthenticate(database: BenchDatabase): Promise<number> {
  const dir = makeTempDir('switchboard-bench-auth-inproc');
  const loaded = loadConfig({
    env: {},
    cwd: dir,
    overrides: {
      server: { debug: false },
      auth: { secret_key: 'bench-auth-in-process-secret-0123456789abcdef', ip_max_login_failures: 1_000_000 },
      database: { url: database.url, name: database.name },
      logging: { dir, console: 'off' },
    },
  });
  const server = await buildServer(loaded);
  try {
    const login = await server.app.inject({ method: 'POST', url: '/api/v2/auth/login', payload: ADMIN });
    if (login.statusCode !== 200) throw new Error(`in-process login failed: ${login.body}`);
    const token = login.json<{ access_token: string }>().access_token;
    for (let i = 0; i < 10_000; i++) await server.app.auth.authenticate(token); // warm caches and JIT
    const started = performance.now();
    for (let i = 0; i < AUTH_CALLS; i++) await server.app.auth.authenticate(token);
    return ((performance.now() - started) * 1000) / AUTH_CALLS;
  } finally {
    await server.close();
  }
}
