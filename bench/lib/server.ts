// Runs a server under test in its own process, so the load generator never shares its event loop, and
// waits until it prints its port (see child.ts). The child runs TypeScript through tsx's loader.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';
import { READY_MARKER } from './child.js';

export interface ServerProcess {
  name: string;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port><path>` */
  url(path?: string): string;
  /** CPU time (user + system) the process has used so far, in seconds; undefined off Linux. */
  cpuTime(): CpuTime | undefined;
  /** SIGTERM (graceful shutdown), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface CpuTime {
  /** Every thread: the main thread, worker threads (such as the log transport), GC and libuv threads. */
  total: number;
  /** The main thread alone: the JavaScript event loop that serves requests. */
  main: number;
}

export interface StartServerOptions {
  /** Shown in messages and as the prefix of the child's stderr lines. */
  name: string;
  /** Absolute path of the TypeScript (or JavaScript) entry point. */
  script: string;
  /** The child's whole environment (nothing is inherited that is not listed here). */
  env: NodeJS.ProcessEnv;
  cwd?: string;
  readyTimeoutMs?: number;
  /** Extra Node flags, e.g. ['--cpu-prof']. */
  nodeArgs?: string[];
}

const TSX_LOADER = import.meta.resolve('tsx');
const PROJECT_TSCONFIG = fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every mainstream Linux). */
const CLOCK_TICKS = 100;

export async function startServerProcess(options: StartServerOptions): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', TSX_LOADER, options.script],
    {
      cwd: options.cwd,
      // tsx looks for tsconfig.json from the working directory, which may be a temporary folder.
      env: { TSX_TSCONFIG_PATH: PROJECT_TSCONFIG, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  onCleanup(
    `stop ${options.name}`,
    () => stop(),
    () => void child.kill('SIGKILL'),
  );

  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    remember(line);
    console.error(`[${options.name}] ${line}`);
  });

  let port: number;
  try {
    port = await waitForReady(child, options.readyTimeoutMs ?? 60_000, remember);
  } catch (error) {
    await stop(2_000);
    const output = tail.length ? `\n${tail.join('\n')}` : '';
    throw new Error(`${options.name} server did not start: ${(error as Error).message}${output}`);
  }
  return {
    name: options.name,
    pid: child.pid!,
    port,
    url: (path = '/') => `http://127.0.0.1:${port}${path}`,
    cpuTime: () => readCpuTime(child.pid!),
    stop,
  };
}

function waitForReady(
  child: ChildProcess,
  timeoutMs: number,
  remember: (line: string) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${READY_MARKER} line within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`exited before it was ready (code ${code}, signal ${signal})`));
    };
    child.once('exit', onExit);
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (!line.startsWith(`${READY_MARKER} `)) return remember(line);
      clearTimeout(timer);
      child.off('exit', onExit);
      try {
        const { port } = JSON.parse(line.slice(READY_MARKER.length + 1)) as { port: number };
        resolve(port);
      } catch (error) {
        reject(error as Error);
      }
      // Keep draining stdout so a chatty child never blocks on a full pipe.
    });
  });
}

function readCpuTime(pid: number): CpuTime | undefined {
  try {
    return {
      total: readStatCpu(`/proc/${pid}/stat`),
      main: readStatCpu(`/proc/${pid}/task/${pid}/stat`),
    };
  } catch {
    return undefined;
  }
}

function readStatCpu(file: string): number {
  const stat = fs.readFileSync(file, 'utf8');
  // Fields after the command name (which may contain spaces) start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
