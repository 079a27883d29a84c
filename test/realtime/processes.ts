// Real processes for the multi-instance hub tests: a private redis-server the test may kill and start
// again (never the machine's shared one), and the server itself (src/server.ts under tsx) as an operator
// runs it, configured only by its environment. Everything started here is stopped by `stopAll`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER = path.join(ROOT, 'src', 'server.ts');
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

interface Spawned {
  child: ChildProcess;
  output: () => string;
}

function track(command: string, args: string[], options: Parameters<typeof spawn>[2]): Spawned {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-20_000);
  };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  return { child, output: () => output };
}

/** Kills a child (SIGKILL unless told otherwise) and waits until it is gone. */
export async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!running(child)) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await gone;
}

/** Stops every process this module started and removes its temporary folders. */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => kill(child)));
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Sends one RESP command and resolves with the first reply line (or the connection error code). */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve('TIMEOUT');
    });
    socket.once('connect', () =>
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`),
    );
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.split('\r\n')[0]!);
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

export class PrivateRedis {
  private spawned: Spawned | undefined;

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server on this port (no persistence: a restart starts empty) and waits for PONG. */
  async start(timeoutMs = 15_000): Promise<void> {
    const spawned = track(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { cwd: tempDir('switchboard-redis-') },
    );
    this.spawned = spawned;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!running(spawned.child)) throw new Error(`redis-server exited:\n${spawned.output()}`);
      if ((await redisCommand(this.port, 'PING')) === '+PONG') return;
      await pause(50);
    }
    throw new Error(`redis-server did not answer PING:\n${spawned.output()}`);
  }

  /** Kills it (as a crash would) and waits until the process is gone. */
  async stop(): Promise<void> {
    if (this.spawned) await kill(this.spawned.child);
    this.spawned = undefined;
  }
}

export interface ServerProcess {
  name: string;
  port: number;
  child: ChildProcess;
  output: () => string;
}

/** Starts src/server.ts with only PATH and HOME from this process plus `env`. */
export function startServer(name: string, port: number, env: Record<string, string>): ServerProcess {
  const cwd = tempDir(`switchboard-${name}-`);
  const configDir = path.join(cwd, 'no-config');
  fs.mkdirSync(configDir);
  const spawned = track(process.execPath, ['--import', TSX_LOADER, SERVER], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? os.homedir(),
      CONFIG_DIR: configDir,
      // TEST_SERVER_LOG_DIR keeps each server's logs there (in a folder named after it) after the run.
      LOG_DIR: path.join(
        process.env.TEST_SERVER_LOG_DIR ?? cwd,
        process.env.TEST_SERVER_LOG_DIR ? name : 'logs',
      ),
      PORT: String(port),
      HOST: '127.0.0.1',
      ...env,
    },
  });
  return { name, port, child: spawned.child, output: spawned.output };
}

export interface Health {
  status: 'ok' | 'degraded' | 'down';
  checks?: {
    database: { status: string };
    realtime: { redis: 'disabled' | 'up' | 'down'; instance: string; sockets: number; users: number };
  };
}

export async function health(server: ServerProcess): Promise<{ statusCode: number; body: Health }> {
  const response = await fetch(`http://127.0.0.1:${server.port}/api/v2/health`);
  return { statusCode: response.status, body: (await response.json()) as Health };
}

/**
 * Polls GET /api/v2/health until `accept` says yes; fails with the last answer (and the server's output)
 * if the process dies or `timeoutMs` passes.
 */
export async function waitForHealth(
  server: ServerProcess,
  accept: (answer: { statusCode: number; body: Health }) => boolean,
  timeoutMs: number,
): Promise<Health> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!running(server.child))
      throw new Error(`${server.name} exited (last health: ${last})\n${server.output()}`);
    try {
      const answer = await health(server);
      if (accept(answer)) return answer.body;
      last = `${answer.statusCode} ${JSON.stringify(answer.body)}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await pause(100);
  }
  throw new Error(`${server.name}: health not as expected in ${timeoutMs} ms (last: ${last})`);
}
