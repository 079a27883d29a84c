// The embedded database used when MONGO_URL is not set: a real mongod through mongodb-memory-server where
// its binary can be had, else FerretDB (SQLite handler) from PATH or our cache folder, built with `go install`
// when Go is present. Data lives under DATA_DIR and survives restarts. Tests start their server through
// the same functions.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { machineEnvironment } from '../config/index.js';

const execFileAsync = promisify(execFile);

export const FERRETDB_VERSION = 'v1.24.2';
export const FERRETDB_MODULE_ROOT = 'github.com/FerretDB/FerretDB';
/** After a failed mongod download we do not try again for this long (each try costs seconds offline). */
const MONGOD_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

export type EmbeddedEngine = 'mongod' | 'ferretdb';

export interface EmbeddedDatabase {
  engine: EmbeddedEngine;
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  cacheDir: string;
  prefer: 'auto' | EmbeddedEngine;
  log: (message: string) => void;
  /** For trouble after start (the server died); `log` when not given. */
  warn?: (message: string) => void;
}

export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError';
}

export async function startEmbeddedDatabase(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  // Two servers on one data folder would fight over the database files (and the second would stop the
  // first one's database): refuse instead.
  if (findRunningEmbedded(dataDir)) {
    throw new EmbeddedDatabaseError(
      `${dataDir} is in use by another running Switchboard server; stop it, or give this one its own DATA_DIR (or MONGO_URL)`,
    );
  }
  const reasons: string[] = [];
  // A folder that already holds one engine's data stays with that engine: falling back to the other
  // would start an empty database and make the data look lost.
  const prefer = options.prefer === 'auto' ? (engineWithData(dataDir) ?? 'auto') : options.prefer;

  if (prefer !== 'ferretdb') {
    try {
      return await startMongod(dataDir, options);
    } catch (error) {
      reasons.push(`mongod: ${(error as Error).message.split('\n')[0]}`);
      if (prefer === 'mongod') throw new EmbeddedDatabaseError(unavailableMessage(reasons));
    }
  }
  try {
    const binary = await ensureFerretDbBinary(options.cacheDir, options.log);
    const server = await launchFerretDb({
      binary,
      dataDir: path.join(dataDir, 'ferretdb'),
      // Nothing restarts it: say so loudly, with its last words, instead of failing every query silently.
      onUnexpectedExit: (how, lastOutput) =>
        (options.warn ?? options.log)(
          `embedded FerretDB stopped unexpectedly (${how}); its last output:\n${lastOutput}`,
        ),
    });
    return { engine: 'ferretdb', url: server.url, stop: server.stop };
  } catch (error) {
    reasons.push(`ferretdb: ${(error as Error).message.split('\n')[0]}`);
    throw new EmbeddedDatabaseError(unavailableMessage(reasons));
  }
}

/** Which engine has written data in this folder, if any. */
function engineWithData(dataDir: string): EmbeddedEngine | undefined {
  const has = (dir: string, test: (name: string) => boolean) =>
    fs.existsSync(dir) && fs.readdirSync(dir).some(test);
  if (has(path.join(dataDir, 'mongod'), (name) => name.startsWith('WiredTiger'))) return 'mongod';
  if (has(path.join(dataDir, 'ferretdb'), (name) => name.endsWith('.sqlite'))) return 'ferretdb';
  return undefined;
}

function unavailableMessage(reasons: string[]): string {
  return [
    'no database available. Use one of:',
    '  1. set MONGO_URL to a MongoDB (or FerretDB) server, e.g. MONGO_URL=mongodb://127.0.0.1:27017',
    '  2. allow mongodb-memory-server to download mongod (needs access to fastdl.mongodb.org)',
    `  3. put FerretDB ${FERRETDB_VERSION} on PATH, or install Go so it can be built: npm run db:ferretdb`,
    `what was tried: ${reasons.join('; ')}`,
  ].join('\n');
}

async function startMongod(dataDir: string, options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const marker = path.join(options.cacheDir, 'mongod-download-failed');
  if (fs.existsSync(marker) && Date.now() - fs.statSync(marker).mtimeMs < MONGOD_RETRY_AFTER_MS) {
    throw new Error(`download failed recently (delete ${marker} to retry)`);
  }
  const { MongoMemoryServer } = await import('mongodb-memory-server');
  const dbPath = path.join(dataDir, 'mongod');
  fs.mkdirSync(dbPath, { recursive: true });
  try {
    const server = await MongoMemoryServer.create({ instance: { dbPath, storageEngine: 'wiredTiger' } });
    return {
      engine: 'mongod',
      url: server.getUri(),
      // Keep the data folder: the embedded database must survive restarts.
      stop: async () => void (await server.stop({ doCleanup: false })),
    };
  } catch (error) {
    // Only a failed download is remembered (it would fail again for a while); any other failure of a
    // mongod we have is reported each time rather than silently switching this folder to FerretDB.
    if (/download/i.test((error as Error).message)) {
      fs.mkdirSync(options.cacheDir, { recursive: true });
      fs.writeFileSync(marker, `${new Date().toISOString()} ${(error as Error).message}\n`);
    }
    throw error;
  }
}

const RUNNING_FILE = 'embedded.json';

/** Notes which embedded server this process runs, so tools (npm run admin) can use it too. */
export function recordRunningEmbedded(dataDir: string, database: EmbeddedDatabase): void {
  const record = { engine: database.engine, url: database.url, pid: process.pid };
  fs.writeFileSync(path.join(path.resolve(dataDir), RUNNING_FILE), JSON.stringify(record));
}

export function forgetRunningEmbedded(dataDir: string): void {
  fs.rmSync(path.join(path.resolve(dataDir), RUNNING_FILE), { force: true });
}

/** The embedded server a running Switchboard process started in this data folder, if any. */
export function findRunningEmbedded(dataDir: string): { engine: EmbeddedEngine; url: string } | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(path.join(path.resolve(dataDir), RUNNING_FILE), 'utf8')) as {
      engine: EmbeddedEngine;
      url: string;
      pid: number;
    };
    process.kill(record.pid, 0); // throws when that process is gone
    return { engine: record.engine, url: record.url };
  } catch {
    return undefined;
  }
}

/** The FerretDB binary: from PATH, from the cache folder, or built there with `go install`. */
export async function ensureFerretDbBinary(
  cacheDir: string,
  log: (message: string) => void,
): Promise<string> {
  const onPath = await which('ferretdb');
  if (onPath) return onPath;
  const binDir = path.resolve(cacheDir, `ferretdb-${FERRETDB_VERSION}-${FERRETDB_BUILD}`, 'bin');
  const cached = path.join(binDir, 'ferretdb');
  if (fs.existsSync(cached)) return cached;
  const go = await which('go');
  if (!go) throw new Error(`not on PATH nor in ${binDir}, and Go is not installed to build it`);
  log(`building FerretDB ${FERRETDB_VERSION} into ${binDir} with Go (once; a minute or two)`);
  await buildFerretDb(go, cached);
  if (!fs.existsSync(cached)) throw new Error(`go install finished but ${cached} is missing`);
  return cached;
}

/**
 * Our build of FerretDB, named in the cache folder so a change here builds afresh:
 * `idindex` — FerretDB 1.24's SQLite backend indexes `_id` as `_ferretdb_sjson->"_id"` but looks it up
 * as `_ferretdb_sjson->'$._id'`; SQLite only uses an index for the very expression it was built on, so
 * every find, update and delete by `_id` scanned the whole table (tens of milliseconds at 20,000
 * documents, growing with the collection). The build makes the lookup use the indexed expression (same
 * meaning, see `patchFerretDbSource`).
 */
const FERRETDB_BUILD = 'idindex';

/** The one line changed in FerretDB's source, and what it becomes. */
const ID_COLUMN_FILE = path.join('internal', 'backends', 'sqlite', 'metadata', 'metadata.go');
const ID_COLUMN_ORIGINAL = `IDColumn = DefaultColumn + "->'$._id'"`;
const ID_COLUMN_PATCHED = 'IDColumn = DefaultColumn + `->"_id"`';

function patchFerretDbSource(work: string): void {
  const file = path.join(work, ID_COLUMN_FILE);
  const source = fs.readFileSync(file, 'utf8');
  if (!source.includes(ID_COLUMN_ORIGINAL)) throw new Error(`unexpected FerretDB source: ${ID_COLUMN_FILE}`);
  fs.chmodSync(file, 0o644);
  fs.writeFileSync(file, source.replace(ID_COLUMN_ORIGINAL, ID_COLUMN_PATCHED));
}

/**
 * `go install …@version` builds a binary that panics at start (the module ships without the
 * build/version/version.txt its release process generates). So we fetch the module source through the
 * Go module proxy, add that file, apply our one-line fix (FERRETDB_BUILD) and build it ourselves.
 */
async function buildFerretDb(go: string, output: string): Promise<void> {
  const env = { ...machineEnvironment(), GOFLAGS: '-mod=mod' };
  const options = { env, maxBuffer: 64 * 1024 * 1024 };
  const { stdout } = await execFileAsync(
    go,
    ['mod', 'download', '-json', `${FERRETDB_MODULE_ROOT}@${FERRETDB_VERSION}`],
    {
      ...options,
      cwd: os.tmpdir(),
    },
  );
  const { Dir } = JSON.parse(stdout) as { Dir: string };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferretdb-src-'));
  try {
    fs.cpSync(Dir, work, { recursive: true });
    fs.chmodSync(path.join(work, 'build', 'version'), 0o755);
    fs.writeFileSync(path.join(work, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    patchFerretDbSource(work);
    fs.mkdirSync(path.dirname(output), { recursive: true });
    // Build to a temporary name first so an interrupted build never leaves a broken binary in the cache.
    await execFileAsync(go, ['build', '-o', `${output}.partial`, './cmd/ferretdb'], {
      ...options,
      cwd: work,
    });
    fs.renameSync(`${output}.partial`, output);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export interface FerretDbServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts FerretDB on 127.0.0.1 with its SQLite files in `dataDir`. A pid file there lets the next start
 * stop a server orphaned by a crash of ours (it would otherwise hold the files).
 */
export async function launchFerretDb(options: {
  binary: string;
  dataDir: string;
  port?: number;
  /** Called when the server exits without being asked to stop. */
  onUnexpectedExit?: (how: string, lastOutput: string) => void;
}): Promise<FerretDbServer> {
  const dataDir = path.resolve(options.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  const pidFile = path.join(dataDir, 'ferretdb.pid');
  await stopOrphan(pidFile);

  const port = options.port ?? (await freePort());
  const child = spawn(
    options.binary,
    [
      '--handler=sqlite',
      // WAL with synchronous=NORMAL: a commit is in the OS's hands when it is acknowledged, so it survives
      // this server or ours being killed (as MongoDB's default write concern does), without an fsync per
      // write. With SQLite's default (FULL), every insert waited for an fsync, and on ext4 such an fsync
      // also flushes other files' pending data: while uploads were being written, a message insert took
      // 200–850 ms instead of a few (bench:files, bench:messages p99).
      `--sqlite-url=file:${dataDir}/?_pragma=synchronous(normal)`,
      `--state-dir=${dataDir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--telemetry=disable',
      '--debug-addr=-',
      '--log-level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  fs.writeFileSync(pidFile, String(child.pid));
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping)
      options.onUnexpectedExit?.(
        signal ? `signal ${signal}` : `exit code ${code}`,
        output.join('').slice(-2000),
      );
  });

  try {
    await waitForPort(port, child, 30_000);
  } catch (error) {
    stopping = true;
    await stopChild(child);
    throw new Error(`FerretDB did not start: ${(error as Error).message}\n${output.join('').slice(-2000)}`);
  }
  return {
    url: `mongodb://127.0.0.1:${port}/`,
    port,
    pid: child.pid!,
    stop: async () => {
      stopping = true;
      await stopChild(child);
      fs.rmSync(pidFile, { force: true });
    },
  };
}

async function stopOrphan(pidFile: string): Promise<void> {
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  fs.rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0) return;
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // not running (or no /proc): nothing to stop
  }
  if (!cmdline.includes('ferretdb')) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && fs.existsSync(`/proc/${pid}`); i++) await sleep(100);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    if (await canConnect(port)) return;
    await sleep(100);
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function which(command: string): Promise<string | undefined> {
  for (const dir of (machineEnvironment().PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
