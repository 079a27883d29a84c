// bench:files — what Switchboard's file routes cost, against a bare Fastify server (bench/servers/
// bare-files.ts) measured in the same run; each server in its own process, rounds alternating between them:
//   1. upload_ratio: POST /api/v2/files of a 10 MiB text file (multipart field `file`, bearer token: the
//      app checks the file, hashes it, stores it and records it) by LANES clients, one upload after
//      another each, MiB/s against a bare @fastify/multipart route that only pipes the same bytes into a
//      file with pipeline(part.file, fs.createWriteStream(...)). Target ≥ 0.80.
//   2. rss_growth_mib: BURST uploads of 10 MiB at once to a warmed-up, idle server: its highest RSS while
//      they run (read from /proc every RSS_EVERY_MS) minus its RSS just before. Target < 32. The bare
//      server's growth is printed for context.
//   3. download_ratio: GET /api/v2/files/:id (bearer token) of a 10 MiB file by LANES clients, each body
//      read and dropped, MiB/s against a bare route answering fs.createReadStream of a 10 MiB file.
//      Target ≥ 0.85.
// The file is random printable ASCII (valid UTF-8, no NUL) named bench.txt; every upload carries a counter
// in its first bytes, so no two uploads have the same content. Uploads stay on disk (both servers) until
// the end, in temporary folders removed then.
//
//   npm run bench:files               4 rounds of 8 s (uploads) and 6 s (downloads) per server
//   npm run bench:files -- --quick    4 rounds of 2 s and 1.5 s (about a minute)
//   --bare-only   the baseline alone (checks the client; no app, no database, no targets)
//
// Writing slows down once a run has written a few gigabytes (page cache, writeback): a lone bare server
// measured 385 MiB/s in its first round and 218–257 in the next ones. So each server first uploads for
// 4 s (about 2 GB between them) and every round measures that steady state; before, the bare server's
// first round came before the slowdown and gave it a head start in every quick run.
//
// The app runs with production settings except for the limits one user doing all the uploads would hit:
// FILE_UPLOADS_PER_HOUR=1000000, MAX_FILE_SIZE=20MB, USER_STORAGE_QUOTA=100GB. MONGO_URL, when set, is the
// database server (a fresh database on it, dropped at the end); otherwise the embedded server is started
// in a temporary folder.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_ADMIN, cleanEnvironment, loginBenchAdmin, startAppServer, type AppServer } from './lib/app.js';
import { parseBenchArgs } from './lib/args.js';
import { makeTempDir } from './lib/cleanup.js';
import { startBenchDatabase } from './lib/database.js';
import { printTable } from './lib/report.js';
import { runBench } from './lib/run.js';
import { startServerProcess, type ServerProcess } from './lib/server.js';
import { median, ratio, round } from './lib/stats.js';
import {
  MIB,
  download,
  multipartBody,
  readRss,
  runLanes,
  summarizeTransfers,
  textPayload,
  upload,
  withPeakRss,
  type MultipartBody,
  type TransferRun,
} from './lib/transfer.js';

const TARGETS = { upload_ratio: 0.8, rss_growth_mib: 32, download_ratio: 0.85 };
const FILE_BYTES = 10 * MIB;
const LANES = 4;
const BURST = 20;
const RSS_EVERY_MS = 25;
const ADMIN = BENCH_ADMIN;
const APP_SETTINGS = {
  ADMIN_EMAIL: ADMIN.email,
  ADMIN_PASSWORD: ADMIN.password,
  FILE_UPLOADS_PER_HOUR: '1000000',
  MAX_FILE_SIZE: '20MB',
  USER_STORAGE_QUOTA: '100GB',
};
const BARE_SCRIPT = fileURLToPath(new URL('./servers/bare-files.ts', import.meta.url));

const { quick, values } = parseBenchArgs({ 'bare-only': { type: 'boolean', default: false } });
const bareOnly = values['bare-only'] === true;
const plan = quick
  ? { rounds: 4, uploadS: 2, downloadS: 1.5, warmupS: 4 }
  : { rounds: 4, uploadS: 8, downloadS: 6, warmupS: 4 };

type ServerName = 'bare' | 'app';
type Measure = 'upload' | 'download';

interface Target {
  name: ServerName;
  server: ServerProcess;
  uploadUrl: string;
  downloadUrl: string;
  headers: Record<string, string>;
}

interface Round extends TransferRun {
  measure: Measure;
  round: number;
  server: ServerName;
  /** Cores the server kept busy over the round (its main thread alone: at most 1), CPU ms per transfer. */
  cores: number;
  mainCores: number;
  cpuMsPerTransfer: number;
  /** Cores this process (the client) kept busy: near 1, the client may be what limits the round. */
  clientCores: number;
}

interface Burst {
  server: ServerName;
  idle: number;
  peak: number;
  growthMib: number;
  samples: number;
  run: TransferRun;
}

await runBench('files', async () => {
  const log = (line: string) => console.error(`[bench] ${line}`);
  console.log(
    `bench:files ${quick ? '(quick) ' : ''}— ${FILE_BYTES / MIB} MiB files, ${LANES} clients: uploads ` +
      `${plan.rounds} rounds × ${plan.uploadS} s, downloads ${plan.rounds} rounds × ${plan.downloadS} s per ` +
      `server after ${plan.warmupS} s warm-ups; ${BURST} uploads at once for the RSS growth` +
      `${bareOnly ? '; the bare server alone' : ''}`,
  );
  const payload = textPayload(FILE_BYTES);
  const bareDir = makeTempDir('switchboard-bench-files-bare');
  fs.writeFileSync(path.join(bareDir, 'download.bin'), payload);
  const database = bareOnly ? undefined : await startBenchDatabase('files');
  const [bare, app] = await Promise.all([
    startServerProcess({
      name: 'bare',
      script: BARE_SCRIPT,
      env: { ...cleanEnvironment(), BENCH_FILES_DIR: bareDir },
    }),
    database ? startAppServer({ database, settings: APP_SETTINGS }) : undefined,
  ]);
  const [load1 = 0, load5 = 0] = os.loadavg();
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, load average ${load1.toFixed(2)} / ${load5.toFixed(2)}; ` +
      `database: ${database?.engine ?? 'none'}` +
      (app
        ? `; app: production settings, FILE_UPLOADS_PER_HOUR=${APP_SETTINGS.FILE_UPLOADS_PER_HOUR} ` +
          `MAX_FILE_SIZE=${APP_SETTINGS.MAX_FILE_SIZE} USER_STORAGE_QUOTA=${APP_SETTINGS.USER_STORAGE_QUOTA}`
        : ''),
  );

  // One body per client (and per upload of the burst), each stamped with a new counter before it is sent.
  const bodies = Array.from({ length: Math.max(LANES, BURST) }, () =>
    multipartBody(Buffer.from(payload), { field: 'file', filename: 'bench.txt', contentType: 'text/plain' }),
  );
  let sequence = 0;
  const stamped = (body: MultipartBody) => {
    body.body.write(`${String(++sequence).padStart(20, '0')}\n`, body.payloadOffset, 'latin1');
    return body;
  };

  const targets: Target[] = [
    {
      name: 'bare',
      server: bare,
      uploadUrl: bare.url('/upload'),
      downloadUrl: bare.url('/download'),
      headers: {},
    },
  ];
  if (app) {
    const token = await loginBenchAdmin(app);
    const headers = { authorization: `Bearer ${token}` };
    const fileId = await checkApp(app, headers, stamped(bodies[0]!), log);
    targets.push({
      name: 'app',
      server: app,
      uploadUrl: app.url('/api/v2/files'),
      downloadUrl: app.url(`/api/v2/files/${fileId}`),
      headers,
    });
  }

  const uploadLoad = (target: Target, durationS: number) =>
    runLanes(LANES, durationS, (lane) => upload(target.uploadUrl, target.headers, stamped(bodies[lane]!)));
  const downloadLoad = (target: Target, durationS: number) =>
    runLanes(LANES, durationS, () => download(target.downloadUrl, target.headers, FILE_BYTES));

  // ---- warm-up, then the memory of BURST uploads at once on an idle server ----
  for (const target of targets) await uploadLoad(target, plan.warmupS);
  const bursts: Burst[] = [];
  for (const target of targets) {
    await waitForIdle(target.server);
    const idle = readRss(target.server.pid);
    if (idle === undefined) {
      log(`${target.name}: no /proc/${target.server.pid}/status: RSS not measured`);
      continue;
    }
    const started = performance.now();
    const { result, peak, samples } = await withPeakRss(target.server.pid, RSS_EVERY_MS, () =>
      Promise.all(
        bodies.slice(0, BURST).map((body) => upload(target.uploadUrl, target.headers, stamped(body))),
      ),
    );
    const run = summarizeTransfers(result, (performance.now() - started) / 1000);
    const burst = { server: target.name, idle, peak, growthMib: (peak - idle) / MIB, samples, run };
    bursts.push(burst);
    log(
      `${target.name}: ${BURST} uploads at once in ${run.seconds.toFixed(2)} s, RSS ${mib(idle)} → peak ` +
        `${mib(peak)} MiB (+${round(burst.growthMib, 1)})${describeFailures(run)}`,
    );
  }

  // ---- throughput, rounds alternating between the servers ----
  const rounds: Round[] = [];
  const measure = async (what: Measure, target: Target, round: number, durationS: number) => {
    const before = target.server.cpuTime();
    const client = process.cpuUsage();
    const run = await (what === 'upload' ? uploadLoad : downloadLoad)(target, durationS);
    const after = target.server.cpuTime();
    const clientUsage = process.cpuUsage(client);
    const cpu = before && after ? after.total - before.total : Number.NaN;
    const main = before && after ? after.main - before.main : Number.NaN;
    rounds.push({
      ...run,
      measure: what,
      round,
      server: target.name,
      cores: cpu / run.seconds,
      mainCores: main / run.seconds,
      cpuMsPerTransfer: (cpu * 1000) / Math.max(1, run.completed),
      clientCores: (clientUsage.user + clientUsage.system) / 1e6 / run.seconds,
    });
    return run;
  };
  for (const what of ['upload', 'download'] as const) {
    const durationS = what === 'upload' ? plan.uploadS : plan.downloadS;
    if (what === 'download') for (const target of targets) await downloadLoad(target, plan.warmupS);
    for (let n = 1; n <= plan.rounds; n++) {
      // Which server goes first alternates too, so neither always follows the other's disk writes.
      const order = n % 2 === 1 ? targets : [...targets].reverse();
      const line: string[] = [];
      for (const target of order) {
        const run = await measure(what, target, n, durationS);
        line.push(`${target.name} ${round(run.mibPerS)} MiB/s${describeFailures(run)}`);
      }
      log(`${what} round ${n}/${plan.rounds}: ${line.join(', ')}`);
    }
  }

  // ---- report ----
  const summary = (what: Measure, name: ServerName) => {
    const mine = rounds.filter((r) => r.measure === what && r.server === name);
    return {
      mibPerS: median(mine.map((r) => r.mibPerS)),
      perS: median(mine.map((r) => r.perS)),
      p50Ms: median(mine.map((r) => r.p50Ms)),
      maxMs: Math.max(...mine.map((r) => r.maxMs)),
      cores: median(mine.map((r) => r.cores)),
      mainCores: median(mine.map((r) => r.mainCores)),
      cpuMs: median(mine.map((r) => r.cpuMsPerTransfer)),
      clientCores: median(mine.map((r) => r.clientCores)),
      completed: mine.reduce((sum, r) => sum + r.completed, 0),
      failed: mine.reduce((sum, r) => sum + r.failed, 0),
    };
  };
  console.log('');
  printTable(
    [
      'measure',
      'server',
      'median MiB/s',
      'files/s',
      'p50 ms',
      'max ms',
      'server cores',
      'main thread',
      'CPU ms/file',
      'client cores',
      'done',
      'failed',
    ],
    (['upload', 'download'] as const).flatMap((what) =>
      targets.map(({ name }) => {
        const s = summary(what, name);
        return [
          what,
          name,
          round(s.mibPerS, 1),
          round(s.perS, 1),
          round(s.p50Ms, 1),
          round(s.maxMs, 1),
          round(s.cores, 2),
          round(s.mainCores, 2),
          round(s.cpuMs, 1),
          round(s.clientCores, 2),
          s.completed,
          s.failed,
        ];
      }),
    ),
  );
  console.log('');
  printTable(
    [`${BURST} uploads at once`, 'RSS MiB: idle', 'peak', 'growth', 'samples', 'seconds', 'done', 'failed'],
    bursts.map((b) => [
      b.server,
      round(b.idle / MIB, 1),
      round(b.peak / MIB, 1),
      round(b.growthMib, 1),
      b.samples,
      round(b.run.seconds, 2),
      b.run.completed,
      b.run.failed,
    ]),
  );
  const stored = targets.map(({ name }) => {
    const dir = name === 'app' ? app!.settings.UPLOAD_PATH! : path.join(bareDir, 'uploads');
    return `${name} ${describeFolder(dir)}`;
  });
  console.log(`stored at the end: ${stored.join('; ')}`);

  const bareBurst = bursts.find((b) => b.server === 'bare');
  const base = {
    bare_upload_mib_s: round(summary('upload', 'bare').mibPerS, 1),
    bare_download_mib_s: round(summary('download', 'bare').mibPerS, 1),
    bare_rss_growth_mib: bareBurst ? round(bareBurst.growthMib, 1) : null,
    file_mib: FILE_BYTES / MIB,
    clients: LANES,
    burst: BURST,
    load_average: round(load1, 2),
    quick,
  };
  if (!app) return { ...base, bare_only: true };

  const appBurst = bursts.find((b) => b.server === 'app');
  const up = { app: summary('upload', 'app'), bare: summary('upload', 'bare') };
  const down = { app: summary('download', 'app'), bare: summary('download', 'bare') };
  const result = {
    upload_ratio: ratio(up.app.mibPerS, up.bare.mibPerS),
    rss_growth_mib: appBurst ? round(appBurst.growthMib, 1) : Number.NaN,
    download_ratio: ratio(down.app.mibPerS, down.bare.mibPerS),
    app_upload_mib_s: round(up.app.mibPerS, 1),
    app_download_mib_s: round(down.app.mibPerS, 1),
    app_upload_p50_ms: round(up.app.p50Ms, 1),
    bare_upload_p50_ms: round(up.bare.p50Ms, 1),
    app_download_p50_ms: round(down.app.p50Ms, 1),
    bare_download_p50_ms: round(down.bare.p50Ms, 1),
    app_upload_cpu_ms_per_file: round(up.app.cpuMs, 1),
    bare_upload_cpu_ms_per_file: round(up.bare.cpuMs, 1),
    app_download_cpu_ms_per_file: round(down.app.cpuMs, 1),
    bare_download_cpu_ms_per_file: round(down.bare.cpuMs, 1),
    app_failed: up.app.failed + down.app.failed + (appBurst?.run.failed ?? 0),
    app_failures: mergeFailures(rounds.filter((r) => r.server === 'app').map((r) => r.failures)),
    app_idle_rss_mib: appBurst ? round(appBurst.idle / MIB, 1) : null,
    ...base,
    targets: TARGETS,
    database: database!.engine,
  };
  console.log('');
  const verdict = (key: keyof typeof TARGETS, atLeast: boolean) => {
    const value = result[key];
    const met = atLeast ? value >= TARGETS[key] : value < TARGETS[key];
    return `${key} ${value} (target ${atLeast ? '≥' : '<'} ${TARGETS[key]}: ${met ? 'met' : 'NOT met'})`;
  };
  console.log(
    [
      verdict('upload_ratio', true),
      `${verdict('rss_growth_mib', false)}; bare server: ${base.bare_rss_growth_mib ?? '-'} MiB`,
      verdict('download_ratio', true),
    ].join('\n'),
  );
  if (result.app_failed > 0) {
    console.log(`app: ${result.app_failed} transfers failed: ${JSON.stringify(result.app_failures)}`);
  }
  return result;
});

/**
 * Before measuring: one upload through the app, whose answer must describe the file (size, sha256) and
 * whose signed link and bearer download must give its bytes back. Returns the file's id.
 */
async function checkApp(
  app: AppServer,
  headers: Record<string, string>,
  body: MultipartBody,
  log: (line: string) => void,
): Promise<string> {
  const outcome = await upload(app.url('/api/v2/files'), headers, body);
  if (!outcome.ok) {
    throw new Error(`app upload: ${outcome.failure} ${outcome.body?.slice(0, 500) ?? ''}`);
  }
  const file = JSON.parse(outcome.body!) as {
    id: string;
    file_size: number;
    sha256: string;
    file_url: string;
    file_type: string;
  };
  const bytes = body.body.subarray(body.payloadOffset, body.payloadOffset + body.fileBytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (file.file_size !== FILE_BYTES || file.sha256 !== sha256) {
    throw new Error(
      `app upload answered ${outcome.body}, expected file_size ${FILE_BYTES}, sha256 ${sha256}`,
    );
  }
  for (const [how, url, withHeaders] of [
    ['signed link', file.file_url, {}],
    ['bearer token', `/api/v2/files/${file.id}`, headers],
  ] as const) {
    const response = await fetch(app.url(url), { headers: withHeaders });
    const got = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200 || !got.equals(bytes)) {
      throw new Error(
        `app download by ${how}: ${response.status}, ${got.length} bytes, not the file uploaded`,
      );
    }
  }
  log(`app: upload answered 201 (${file.file_type}, sha256 matches); signed link and bearer download match`);
  return file.id;
}

/** Waits until the server has used under a tenth of a core for half a second (at most 15 s). */
async function waitForIdle(server: ServerProcess): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < 15_000) {
    const before = server.cpuTime();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = server.cpuTime();
    if (!before || !after || (after.total - before.total) / 0.5 < 0.1) return;
  }
}

function describeFailures(run: TransferRun): string {
  return run.failed ? ` (${run.failed} failed: ${JSON.stringify(run.failures)})` : '';
}

function mergeFailures(all: Record<string, number>[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const failures of all) {
    for (const [reason, count] of Object.entries(failures)) merged[reason] = (merged[reason] ?? 0) + count;
  }
  return merged;
}

function describeFolder(dir: string): string {
  if (!fs.existsSync(dir)) return '0 files';
  let files = 0;
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return `${files} files, ${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}
