// bench:http — what Switchboard's stack costs on a trivial route. Our full app (every plugin, production
// logging at info to files) serving GET /api/v2/health/live, against a bare Fastify route, each in its
// own process, measured in alternating rounds in the same run. Target: app ≥ 0.85 × bare (median req/s).
//
//   npm run bench:http               5 rounds of 10 s per server
//   npm run bench:http -- --quick    2 rounds of 5 s per server (under a minute)
//
// MONGO_URL, when set, is the database the app uses (a fresh database on it, dropped at the end);
// otherwise the embedded server is started in a temporary folder.
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { startAppServer, cleanEnvironment } from './lib/app.js';
import { parseBenchArgs } from './lib/args.js';
import { startBenchDatabase } from './lib/database.js';
import { DEFAULT_CONNECTIONS, runLoad, runLoadOn, type LoadResult, type ServerCpu } from './lib/load.js';
import { printTable } from './lib/report.js';
import { runBench } from './lib/run.js';
import { startServerProcess, type ServerProcess } from './lib/server.js';
import { median, ratio, round } from './lib/stats.js';

const TARGET = 0.85;
const ROUTE = '/api/v2/health/live';
const BARE_SERVER_SCRIPT = fileURLToPath(new URL('./servers/bare.ts', import.meta.url));

const { quick } = parseBenchArgs();
const plan = quick ? { rounds: 2, durationS: 5, warmupS: 2 } : { rounds: 5, durationS: 10, warmupS: 3 };

type Round = LoadResult & { round: number; server: 'bare' | 'app'; cpu: ServerCpu | undefined };

await runBench('http', async () => {
  console.log(
    `bench:http ${quick ? '(quick) ' : ''}— ${plan.rounds} rounds × ${plan.durationS} s per server after a ` +
      `${plan.warmupS} s warm-up; ${DEFAULT_CONNECTIONS} connections, pipelining 1; GET ${ROUTE}`,
  );
  const database = await startBenchDatabase('http');
  const [bare, app] = await Promise.all([
    startServerProcess({ name: 'bare', script: BARE_SERVER_SCRIPT, env: cleanEnvironment() }),
    startAppServer({ database }),
  ]);
  const servers = { bare, app };
  await checkRoute(bare);
  await checkRoute(app);
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}); database: ${database.engine}`,
  );
  console.log(
    `app settings: ${Object.entries(app.settings)
      .filter(([key]) => !['MONGO_URL', 'LOG_DIR', 'DATA_DIR', 'UPLOAD_PATH', 'DB_NAME'].includes(key))
      .map(([key, value]) => `${key}=${value}`)
      .join(' ')}`,
  );

  for (const server of [bare, app]) {
    await runLoad({ url: server.url(ROUTE), durationS: plan.warmupS });
  }
  const logBytesBefore = app.logBytes();

  const rounds: Round[] = [];
  for (let n = 1; n <= plan.rounds; n++) {
    for (const name of ['bare', 'app'] as const) {
      const result = await runLoadOn(servers[name], {
        url: servers[name].url(ROUTE),
        durationS: plan.durationS,
      });
      rounds.push({ ...result, round: n, server: name });
      console.error(`[bench] round ${n}/${plan.rounds} ${name}: ${Math.round(result.rps)} req/s`);
    }
  }
  const logBytes = app.logBytes() - logBytesBefore;

  console.log('');
  // CPU columns: cores the server kept busy (all threads / main thread) and its CPU time per response.
  printTable(
    [
      'round',
      'server',
      'req/s',
      'p50 ms',
      'p99 ms',
      'non-2xx',
      'errors',
      'cores all/main',
      'CPU µs/req all/main',
    ],
    rounds.map((r) => [
      r.round,
      r.server,
      Math.round(r.rps),
      r.latencyP50Ms,
      r.latencyP99Ms,
      r.non2xx,
      r.errors,
      r.cpu && `${r.cpu.cores.toFixed(2)} / ${r.cpu.mainCores.toFixed(2)}`,
      r.cpu && `${r.cpu.usPerRequest.toFixed(1)} / ${r.cpu.mainUsPerRequest.toFixed(1)}`,
    ]),
  );
  const summary = (name: 'bare' | 'app') => {
    const mine = rounds.filter((r) => r.server === name);
    return {
      rps: median(mine.map((r) => r.rps)),
      p99: median(mine.map((r) => r.latencyP99Ms)),
      usPerRequest: median(mine.map((r) => r.cpu?.usPerRequest ?? Number.NaN)),
      mainUsPerRequest: median(mine.map((r) => r.cpu?.mainUsPerRequest ?? Number.NaN)),
    };
  };
  const bareSummary = summary('bare');
  const appSummary = summary('app');
  const result = ratio(appSummary.rps, bareSummary.rps);
  console.log('');
  printTable(
    ['server', 'median req/s', 'median p99 ms', 'CPU µs/req all', 'CPU µs/req main'],
    [bareSummary, appSummary].map((s, i) => [
      i === 0 ? 'bare Fastify route' : 'app (all plugins, logs at info)',
      Math.round(s.rps),
      s.p99,
      round(s.usPerRequest, 1),
      round(s.mainUsPerRequest, 1),
    ]),
  );
  console.log('');
  console.log(
    `ratio app/bare: ${result.toFixed(3)} (target ≥ ${TARGET}: ${result >= TARGET ? 'met' : 'NOT met'})`,
  );
  if (Number.isFinite(appSummary.usPerRequest)) {
    // CPU per request hardly depends on what else the machine runs; req/s does. Shown to help read a run.
    console.log(
      `CPU per request: the app uses ${(appSummary.usPerRequest / bareSummary.usPerRequest).toFixed(2)}× ` +
        `the bare server's (main thread: ${(appSummary.mainUsPerRequest / bareSummary.mainUsPerRequest).toFixed(2)}×)`,
    );
  }
  const [load1 = 0, load5 = 0] = os.loadavg();
  console.log(
    `app wrote ${(logBytes / 1024 / 1024).toFixed(1)} MB of logs during the rounds; machine load average ` +
      `${load1.toFixed(2)} (1 min) / ${load5.toFixed(2)} (5 min) on ${os.cpus().length} CPUs`,
  );
  return {
    ratio: result,
    app_rps: Math.round(appSummary.rps),
    bare_rps: Math.round(bareSummary.rps),
    target: TARGET,
    quick,
  };
});

/** Both servers must answer the route with 200 {"status":"ok"} before anything is measured. */
async function checkRoute(server: ServerProcess): Promise<void> {
  const response = await fetch(server.url(ROUTE));
  const body = (await response.json()) as { status?: string };
  if (response.status !== 200 || body.status !== 'ok') {
    throw new Error(`${server.name}: GET ${ROUTE} answered ${response.status} ${JSON.stringify(body)}`);
  }
}
