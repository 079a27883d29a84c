// bench:auth — what authentication costs. Two measurements on the full app (production settings) in its own
// process, in the same run:
//   1. Password hashing must not stall other requests: p99 of a cheap authenticated GET (GET
//      /api/v2/auth/session at a fixed rate) with logins running at a steady rate, versus without them.
//      Target: p99_ratio ≤ 2.
//   2. Checking a token (JWT verify + session check, cached for up to a second) costs at most 10% of the
//      bench:http route's throughput: GET /api/v2/auth/session (authenticated) versus GET
//      /api/v2/health/live (public), full speed. Target: auth_throughput_ratio ≥ 0.90.
//
//   npm run bench:auth               longer phases
//   npm run bench:auth -- --quick    under a minute
import { parseBenchArgs } from './lib/args.js';
import { startAppServer } from './lib/app.js';
import { startBenchDatabase } from './lib/database.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { printTable } from './lib/report.js';
import { runBench } from './lib/run.js';
import { median, ratio, round } from './lib/stats.js';

const P99_TARGET = 2;
const THROUGHPUT_TARGET = 0.9;
const ADMIN = { email: 'bench.admin@example.com', password: 'Copper-kettle-meadow-5521' };
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

  // 2. Throughput cost of authentication, alternating rounds.
  const publicRuns: LoadResult[] = [];
  const authRuns: LoadResult[] = [];
  await runLoad({ url: app.url(PUBLIC_ROUTE), durationS: 2 });
  for (let n = 0; n < plan.rounds; n++) {
    publicRuns.push(await runLoad({ url: app.url(PUBLIC_ROUTE), durationS: plan.throughputS }));
    authRuns.push(
      await runLoad({ url: app.url(CHEAP_ROUTE), headers: authorization, durationS: plan.throughputS }),
    );
  }
  printTable(
    ['route', 'round', 'req/s', 'p99 ms', 'non-2xx'],
    [
      ...publicRuns.map((r, i) => [
        `GET ${PUBLIC_ROUTE} (public)`,
        i + 1,
        round(r.rps),
        r.latencyP99Ms,
        r.non2xx,
      ]),
      ...authRuns.map((r, i) => [
        `GET ${CHEAP_ROUTE} (authenticated)`,
        i + 1,
        round(r.rps),
        r.latencyP99Ms,
        r.non2xx,
      ]),
    ],
  );
  const publicRps = median(publicRuns.map((r) => r.rps));
  const authRps = median(authRuns.map((r) => r.rps));
  const errors = [...quiet, ...loaded, ...loginRuns, ...publicRuns, ...authRuns].reduce(
    (sum, r) => sum + r.non2xx + r.errors,
    0,
  );

  const result = {
    p99_ratio: ratio(p99Loaded, p99Quiet, 2),
    p99_alone_ms: p99Quiet,
    p99_with_logins_ms: p99Loaded,
    logins_per_s: round(median(loginRuns.map((r) => r.rps)), 1),
    auth_throughput_ratio: ratio(authRps, publicRps),
    auth_rps: round(authRps),
    public_rps: round(publicRps),
    non_2xx_or_errors: errors,
    targets: { p99_ratio: P99_TARGET, auth_throughput_ratio: THROUGHPUT_TARGET },
    database: database.engine,
    quick,
  };
  console.log(
    `p99 with logins ÷ alone = ${result.p99_ratio} (target ≤ ${P99_TARGET}); ` +
      `authenticated ÷ public throughput = ${result.auth_throughput_ratio} (target ≥ ${THROUGHPUT_TARGET})`,
  );
  return result;
});
