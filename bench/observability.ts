// bench:observability — what watching the server costs, and whether health stays cheap under load. Two
// copies of the app on the same database server, in the same run, rounds alternating between them:
//   on   monitoring and metrics as shipped (background health checks, metrics hooks, database command
//        monitoring), scraped by a "Prometheus" every second while it works
//   off  MONITORING_ENABLED=false, METRICS_ENABLED=false
//   1. ratio: POST /api/v2/messages req/s on ÷ off (median of the rounds). Target ≥ 0.95.
//   2. health_p99_ms: p99 of GET /api/v2/health on the "on" copy, probed 20 times a second while it takes
//      the send load. Target ≤ 5 ms.
// Sends go to CHANNELS channels at random, as in bench:messages. (The analytics of the issue are not built
// yet; when they are, the "on" copy runs them too.)
//
//   npm run bench:observability               4 rounds of 6 s per copy
//   npm run bench:observability -- --quick    2 rounds of 3 s (under a minute)
import http from 'node:http';
import os from 'node:os';
import { BENCH_ADMIN, startAppServer, type AppServer } from './lib/app.js';
import { parseBenchArgs } from './lib/args.js';
import { startBenchDatabase } from './lib/database.js';
import { copySenders, summariseCopies, type Copy, type CopyRound } from './lib/copies.js';
import { runBench } from './lib/run.js';
import { median, ratio, round } from './lib/stats.js';

const RATIO_TARGET = 0.95;
const HEALTH_P99_TARGET_MS = 5;
const CHANNELS = 20;
const CONNECTIONS = 20;
const HEALTH_EVERY_MS = 50;
const SCRAPE_EVERY_MS = 1000;

const { quick } = parseBenchArgs();
const plan = quick ? { rounds: 2, durationS: 3, warmupS: 1 } : { rounds: 4, durationS: 6, warmupS: 2 };

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
  const [on, off] = await Promise.all([
    startAppServer({ name: 'on', database: { ...database, name: `${database.name}_on` }, settings: common }),
    startAppServer({
      name: 'off',
      database: { ...database, name: `${database.name}_off` },
      settings: { ...common, MONITORING_ENABLED: 'false', METRICS_ENABLED: 'false' },
    }),
  ]);
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs; database: ${database.engine}; both copies: production ` +
      `settings, MESSAGES_PER_MINUTE=1000000`,
  );

  const send = await copySenders({ on, off }, { channels: CHANNELS, connections: CONNECTIONS });

  await send('on', plan.warmupS);
  await send('off', plan.warmupS);
  const rounds: CopyRound[] = [];
  const healthMs: number[] = [];
  let scrapes = 0;
  for (let n = 1; n <= plan.rounds; n++) {
    // Which copy goes first alternates, so neither always runs on a warmer or cooler machine.
    const order: Copy[] = n % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
    for (const copy of order) {
      if (copy === 'off') {
        rounds.push({ ...(await send('off', plan.durationS)), copy, round: n });
        continue;
      }
      const watching = watch(on, healthMs, () => (scrapes += 1));
      try {
        rounds.push({ ...(await send('on', plan.durationS)), copy, round: n });
      } finally {
        await watching.stop();
      }
    }
    console.error(`[bench] round ${n}/${plan.rounds} done`);
  }

  const { on: onSummary, off: offSummary } = summariseCopies(rounds);
  const sendRatio = ratio(onSummary.rps, offSummary.rps);
  const sorted = [...healthMs].sort((a, b) => a - b);
  const healthP99 = round(
    sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? Number.NaN,
    2,
  );
  const healthP50 = round(median(sorted), 2);
  console.log(
    `health under load: ${sorted.length} probes, p50 ${healthP50} ms, p99 ${healthP99} ms; ${scrapes} metrics scrapes`,
  );
  console.log(
    `ratio ${sendRatio} (target ≥ ${RATIO_TARGET}: ${sendRatio >= RATIO_TARGET ? 'met' : 'NOT met'}); ` +
      `health_p99_ms ${healthP99} (target ≤ ${HEALTH_P99_TARGET_MS}: ${healthP99 <= HEALTH_P99_TARGET_MS ? 'met' : 'NOT met'})`,
  );
  return {
    ratio: sendRatio,
    health_p99_ms: healthP99,
    health_p50_ms: healthP50,
    health_probes: sorted.length,
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

/**
 * While the "on" copy works: health probed every HEALTH_EVERY_MS (each latency recorded) and metrics
 * scraped every SCRAPE_EVERY_MS, on a connection of their own.
 */
function watch(app: AppServer, healthMs: number[], scraped: () => void): { stop(): Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let running = true;
  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      http
        .get(app.url(path), { agent }, (response) => {
          response.resume();
          response.once('end', () =>
            response.statusCode === 200
              ? resolve(performance.now() - started)
              : reject(new Error(`${path}: ${response.statusCode}`)),
          );
        })
        .once('error', reject);
    });
  const loop = async (everyMs: number, task: () => Promise<void>) => {
    while (running) {
      const started = performance.now();
      await task();
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, everyMs - (performance.now() - started))),
      );
    }
  };
  const loops = Promise.all([
    loop(HEALTH_EVERY_MS, async () => void healthMs.push(await get('/api/v2/health'))),
    loop(SCRAPE_EVERY_MS, async () => {
      await get('/api/v2/metrics');
      scraped();
    }),
  ]);
  return {
    stop: async () => {
      running = false;
      await loops;
      agent.destroy();
    },
  };
}
