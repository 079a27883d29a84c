// bench:security — what detection and rate limiting cost. Two copies of the app on the same database
// server, in the same run, rounds alternating between them:
//   on   detection and every rate limit as shipped (limits raised so the load itself is never refused:
//        the cost of counting is measured, not the cost of refusing)
//   off  DETECTION_ENABLED=false, RATE_LIMITING_ENABLED=false
//   1. ratio: POST /api/v2/messages req/s on ÷ off (median of the rounds). Target ≥ 0.95.
//   2. frame_score_us_p50: what the detection plugin's frame inspector does per frame (ban check and the
//      signature walk of every field), in this process, over a realistic mix of client frames; the median
//      of 200 batches of 1,000 frames. Target ≤ 5 µs.
//
//   npm run bench:security               4 rounds of 6 s per copy
//   npm run bench:security -- --quick    2 rounds of 3 s (under a minute)
import os from 'node:os';
import { loadConfig } from '../src/config/index.js';
import { DetectionEngine, userPrincipal } from '../src/security/engine.js';
import { inspectFrame } from '../src/security/inspect.js';
import { MemorySecurityStore } from '../src/security/store.js';
import { BENCH_ADMIN, startAppServer } from './lib/app.js';
import { parseBenchArgs } from './lib/args.js';
import { startBenchDatabase } from './lib/database.js';
import { pick, sentence } from './lib/messages.js';
import { copySenders, summariseCopies, type Copy, type CopyRound } from './lib/copies.js';
import { runBench } from './lib/run.js';
import { median, ratio, round } from './lib/stats.js';

const RATIO_TARGET = 0.95;
const FRAME_TARGET_US = 5;
const CHANNELS = 20;
const CONNECTIONS = 20;

const { quick } = parseBenchArgs();
const plan = quick ? { rounds: 2, durationS: 3, warmupS: 1 } : { rounds: 4, durationS: 6, warmupS: 2 };

await runBench('security', async () => {
  console.log(
    `bench:security ${quick ? '(quick) ' : ''}— POST /messages, ${plan.rounds} rounds × ${plan.durationS} s per ` +
      `copy, ${CONNECTIONS} connections; then the frame inspector in process`,
  );
  const frameUs = scoreFrames();
  console.log(`frame scoring: p50 ${frameUs.p50} µs, p99 ${frameUs.p99} µs per frame`);

  const database = await startBenchDatabase('security');
  const common = { ADMIN_EMAIL: BENCH_ADMIN.email, ADMIN_PASSWORD: BENCH_ADMIN.password };
  const [on, off] = await Promise.all([
    startAppServer({
      name: 'on',
      database: { ...database, name: `${database.name}_on` },
      settings: { ...common, MESSAGES_PER_MINUTE: '1000000', RATE_LIMIT_PER_MINUTE: '10000000' },
    }),
    startAppServer({
      name: 'off',
      database: { ...database, name: `${database.name}_off` },
      settings: { ...common, DETECTION_ENABLED: 'false', RATE_LIMITING_ENABLED: 'false' },
    }),
  ]);
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs; database: ${database.engine}; production settings`,
  );

  const send = await copySenders({ on, off }, { channels: CHANNELS, connections: CONNECTIONS });
  await send('on', plan.warmupS);
  await send('off', plan.warmupS);
  const rounds: CopyRound[] = [];
  for (let n = 1; n <= plan.rounds; n++) {
    // Which copy goes first alternates, so neither always runs on a warmer or cooler machine.
    const order: Copy[] = n % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
    for (const copy of order) rounds.push({ ...(await send(copy, plan.durationS)), copy, round: n });
    console.error(`[bench] round ${n}/${plan.rounds} done`);
  }

  const { on: onSummary, off: offSummary } = summariseCopies(rounds);
  const sendRatio = ratio(onSummary.rps, offSummary.rps);
  console.log(
    `ratio ${sendRatio} (target ≥ ${RATIO_TARGET}: ${sendRatio >= RATIO_TARGET ? 'met' : 'NOT met'}); ` +
      `frame_score_us_p50 ${frameUs.p50} (target ≤ ${FRAME_TARGET_US}: ${frameUs.p50 <= FRAME_TARGET_US ? 'met' : 'NOT met'})`,
  );
  return {
    ratio: sendRatio,
    frame_score_us_p50: frameUs.p50,
    frame_score_us_p99: frameUs.p99,
    on_rps: Math.round(onSummary.rps),
    off_rps: Math.round(offSummary.rps),
    on_cpu_us_per_request: round(onSummary.us, 1),
    off_cpu_us_per_request: round(offSummary.us, 1),
    non2xx: onSummary.non2xx + offSummary.non2xx,
    targets: { ratio: RATIO_TARGET, frame_score_us_p50: FRAME_TARGET_US },
    database: database.engine,
    quick,
  };
});

/**
 * The frame inspector's work, as src/plugins/app/detection.ts does it for every frame: the user's ban
 * check, the field walk, and starting the assessment when a rule fired. Frames: mostly chat messages (some with code in them), typing, reads,
 * reactions and pings, with ids shaped like the real ones.
 */
function scoreFrames(): { p50: number; p99: number } {
  const config = loadConfig({ env: {}, cwd: os.tmpdir() }).config.security;
  const engine = new DetectionEngine({
    config,
    store: new MemorySecurityStore(config.score_half_life_s * 1000, config.offense_memory_s * 1000, 1000),
    record: () => undefined,
    alert: () => undefined,
    banned: () => undefined,
  });
  const id = () => Math.random().toString(16).slice(2, 14).padEnd(24, '0');
  const channelIds = Array.from({ length: 20 }, id);
  const code = [
    'see `npm ci && npm test`',
    'SELECT id FROM orders WHERE total > 100;',
    '<div class="x">ok</div>',
  ];
  const frames = Array.from({ length: 1000 }, (_, n) => {
    const channel_id = pick(channelIds);
    switch (n % 10) {
      case 0:
        return { type: 'typing', channel_id };
      case 1:
        return { type: 'mark_read', channel_id, seq: n };
      case 2:
        return { type: 'reaction_update', id: `r${n}`, message_id: id(), reaction_type: '👍', action: 'add' };
      case 3:
        return { type: 'ping' };
      case 4:
        return { type: 'chat_message', id: `c${n}`, channel_id, content: `${sentence(8)} ${pick(code)}` };
      default:
        return { type: 'chat_message', id: `c${n}`, channel_id, content: sentence(12) };
    }
  });
  const userId = id();
  const subject = { principal: userPrincipal(userId), user_id: userId, ip: null };
  const inspect = (frame: object) => {
    if (engine.banOf(subject.principal)) return false;
    const fired = inspectFrame(frame);
    // Content rules fire on the code snippets: scored in the background, as the plugin does.
    if (fired.length > 0) void engine.assess(subject, fired, { connection_id: 'bench', frame: 1 });
    return true;
  };
  for (let warm = 0; warm < 20; warm++) for (const frame of frames) inspect(frame);
  const perFrameUs: number[] = [];
  for (let batch = 0; batch < 200; batch++) {
    const started = process.hrtime.bigint();
    for (const frame of frames) inspect(frame);
    perFrameUs.push(Number(process.hrtime.bigint() - started) / 1000 / frames.length);
  }
  perFrameUs.sort((a, b) => a - b);
  return {
    p50: round(median(perFrameUs), 2),
    p99: round(perFrameUs[Math.floor(perFrameUs.length * 0.99)]!, 2),
  };
}
