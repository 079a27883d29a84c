// bench:observability — what watching the server costs, and whether health stays cheap under load. Two
// copies of the app on the same database server, in the same run, rounds alternating between them:
//   on   monitoring and metrics as shipped (background health checks, metrics hooks, database command
//        monitoring, analytics), scraped by a "Prometheus" every second while it works
//   off  MONITORING_ENABLED=false, METRICS_ENABLED=false
//   1. ratio: POST /api/v2/messages req/s on ÷ off (median of the rounds). Target ≥ 0.95.
//   2. health_p99_ms: p99 of GET /api/v2/health on the "on" copy, probed 20 times a second while it takes
//      the send load. Target ≤ 5 ms.
// The probes come from a process of their own (bench/servers/latency-prober.ts): the load generator's busy
// event loop in this one would delay them. The same prober, at the same moments, also probes a bare
// Fastify server answering a constant body (bench/servers/bare.ts): its p99, idle and under the same load
// on the machine, is the floor any server process here can reach (bare_health_p99_ms).
// Sends go to CHANNELS channels at random, as in bench:messages.
//
//   npm run bench:observability               4 rounds of 6 s per copy
//   npm run bench:observability -- --quick    2 rounds of 3 s (under a minute)
import http from 'node:http';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { BENCH_ADMIN, cleanEnvironment, startAppServer, type AppServer } from './lib/app.js';
import { parseBenchArgs } from './lib/args.js';
import { startBenchDatabase } from './lib/database.js';
import { copySenders, summariseCopies, type Copy, type CopyRound } from './lib/copies.js';
import { startLatencyProber } from './lib/latency-prober.js';
import { printTable } from './lib/report.js';
import { runBench } from './lib/run.js';
import { startServerProcess } from './lib/server.js';
import { percentile, ratio, round } from './lib/stats.js';

const RATIO_TARGET = 0.95;
const HEALTH_P99_TARGET_MS = 5;
const CHANNELS = 20;
const CONNECTIONS = 20;
const HEALTH_EVERY_MS = 50;
const SCRAPE_EVERY_MS = 1000;
const BARE_SERVER_SCRIPT = fileURLToPath(new URL('./servers/bare.ts', import.meta.url));

const { quick } = parseBenchArgs();
const plan = quick
  ? { rounds: 2, durationS: 3, warmupS: 1, idleS: 3 }
  : { rounds: 4, durationS: 6, warmupS: 2, idleS: 6 };

await runBench('observability', async () => {
  console.log(
    `bench:observability ${quick ? '(quick) ' : ''}— POST /messages, ${plan.rounds} rounds × ${plan.durationS} s ` +
      `per copy, ${CONNECTIONS} connections; health probed every ${HEALTH_EVERY_MS} ms and metrics scraped ` +
      `every ${SCRAPE_EVERY_MS} ms on the "on" copy`,
  );
  const database = await startBenchDatabase('observability');
  const common = {
    ADMIN_EMAIL: BENCH_ADMIN.email,
    ADMIN_PASSWORD: BENCH_ADMIN.password,
    MESSAGES_PER_MINUTE: '1000000', // one sender sends everything here
  };
  const [on, off, bare, prober] = await Promise.all([
    startAppServer({ name: 'on', database: { ...database, name: `${database.name}_on` }, settings: common }),
    startAppServer({
      name: 'off',
      database: { ...database, name: `${database.name}_off` },
      settings: { ...common, MONITORING_ENABLED: 'false', METRICS_ENABLED: 'false' },
    }),
    startServerProcess({ name: 'bare', script: BARE_SERVER_SCRIPT, env: cleanEnvironment() }),
    startLatencyProber(),
  ]);
  const probeTargets = { app: on.url('/api/v2/health'), bare: bare.url('/api/v2/health/live') };
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs; database: ${database.engine}; both copies: production ` +
      `settings, MESSAGES_PER_MINUTE=1000000`,
  );

  const send = await copySenders({ on, off }, { channels: CHANNELS, connections: CONNECTIONS });

  await send('on', plan.warmupS);
  await send('off', plan.warmupS);
  await prober.start(probeTargets, HEALTH_EVERY_MS);
  await new Promise((resolve) => setTimeout(resolve, plan.idleS * 1000));
  const idle = await prober.stop();
  const rounds: CopyRound[] = [];
  const loaded: Record<string, number[]> = { app: [], bare: [] };
  let scrapes = 0;
  for (let n = 1; n <= plan.rounds; n++) {
    // Which copy goes first alternates, so neither always runs on a warmer or cooler machine.
    const order: Copy[] = n % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
    for (const copy of order) {
      if (copy === 'off') {
        rounds.push({ ...(await send('off', plan.durationS)), copy, round: n });
        continue;
      }
      const scraping = scrapeMetrics(on, () => (scrapes += 1));
      await prober.start(probeTargets, HEALTH_EVERY_MS);
      try {
        rounds.push({ ...(await send('on', plan.durationS)), copy, round: n });
      } finally {
        await scraping.stop();
        const probes = await prober.stop();
        for (const target of ['app', 'bare']) loaded[target]!.push(...probes[target]!);
      }
    }
    console.error(`[bench] round ${n}/${plan.rounds} done`);
  }

  const { on: onSummary, off: offSummary } = summariseCopies(rounds);
  const sendRatio = ratio(onSummary.rps, offSummary.rps);
  const p = (values: number[] | undefined, q: number) => round(percentile(values ?? [], q), 2);
  const row = (when: string, server: string, values: number[] = []) => [
    when,
    server,
    values.length,
    p(values, 50),
    p(values, 99),
    p(values, 100),
  ];
  printTable(
    ['health probes', 'server', 'probes', 'p50 ms', 'p99 ms', 'max ms'],
    [
      row('idle', 'app /health', idle.app),
      row('idle', 'bare', idle.bare),
      row('under load', 'app /health', loaded.app),
      row('under load', 'bare', loaded.bare),
    ],
  );
  const healthP99 = p(loaded.app, 99);
  console.log(
    `${scrapes} metrics scrapes; the bare server is idle while the app copy takes the load: its latency ` +
      `is what the machine alone costs a probe`,
  );
  console.log(
    `ratio ${sendRatio} (target ≥ ${RATIO_TARGET}: ${sendRatio >= RATIO_TARGET ? 'met' : 'NOT met'}); ` +
      `health_p99_ms ${healthP99} (target ≤ ${HEALTH_P99_TARGET_MS}: ${healthP99 <= HEALTH_P99_TARGET_MS ? 'met' : 'NOT met'}; ` +
      `bare server ${p(loaded.bare, 99)} ms)`,
  );
  return {
    ratio: sendRatio,
    health_p99_ms: healthP99,
    health_p50_ms: p(loaded.app, 50),
    health_probes: loaded.app!.length,
    bare_health_p99_ms: p(loaded.bare, 99),
    health_idle_p99_ms: p(idle.app, 99),
    bare_health_idle_p99_ms: p(idle.bare, 99),
    metrics_scrapes: scrapes,
    on_rps: Math.round(onSummary.rps),
    off_rps: Math.round(offSummary.rps),
    on_cpu_us_per_request: round(onSummary.us, 1),
    off_cpu_us_per_request: round(offSummary.us, 1),
    targets: { ratio: RATIO_TARGET, health_p99_ms: HEALTH_P99_TARGET_MS },
    database: database.engine,
    quick,
  };
});

/** While the "on" copy works: its metrics scraped every SCRAPE_EVERY_MS, as Prometheus would. */
function scrapeMetrics(app: AppServer, scraped: () => void): { stop(): Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let running = true;
  let failure: Error | undefined;
  const scrape = () =>
    new Promise<void>((resolve, reject) => {
      http
        .get(app.url('/api/v2/metrics'), { agent }, (response) => {
          response.resume();
          response.once('end', () =>
            response.statusCode === 200 ? resolve() : reject(new Error(`metrics: ${response.statusCode}`)),
          );
        })
        .once('error', reject);
    });
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await scrape();
      scraped();
      const rest = Math.max(0, SCRAPE_EVERY_MS - (performance.now() - started));
      await new Promise((resolve) => setTimeout(resolve, rest));
    }
  })().catch((error: Error) => {
    failure = error; // scraping ends; stop() reports it
  });
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      if (failure) throw failure;
    },
  };
}
