// The benchmark's side of bench:ws's load generator: bench/ws-load.ts runs in a process of its own (never in
// a server's, nor in the benchmark's, whose setup work would disturb what it measures), and takes commands
// over the IPC channel. This file holds the commands' shapes and the handle that sends them.
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';

const LOAD_SCRIPT = fileURLToPath(new URL('../ws-load.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
const PROJECT_TSCONFIG = fileURLToPath(new URL('../../tsconfig.json', import.meta.url));

/** One socket to open: its group's members are addressed together afterwards. */
export interface Target {
  url: string;
  headers?: Record<string, string>;
  /** Which server it goes to (latencies are also reported per label). */
  label: string;
}

export interface ConnectCommand {
  cmd: 'connect';
  group: string;
  targets: Target[];
  /** Handshakes in progress at once. */
  concurrency: number;
  timeoutMs: number;
}

export interface ConnectResult {
  opened: number;
  failed: number;
  seconds: number;
  /** Time from opening a socket to its hello frame. */
  p50Ms: number;
  p99Ms: number;
  /** Why sockets failed, with counts ("close 1013", "http 403", "timeout", an error code). */
  failures: Record<string, number>;
}

interface SendPlan {
  /** The group of sending sockets (the latency run uses its first). */
  sender: string;
  members: string[];
  channelId: string;
  /** Seconds sent before measuring (not counted) and measured. */
  warmupS: number;
  durationS: number;
}

/**
 * Sends as fast as deliveries complete: each sender keeps at most `window` messages not yet acked and
 * delivered to every member.
 */
export interface ThroughputCommand extends SendPlan {
  cmd: 'throughput';
  window: number;
  /** A message not delivered everywhere after this long stops holding a window slot (counted as lost). */
  stallMs: number;
}

export interface ThroughputResult {
  /** Deliveries (a member receiving a chat frame) per second over the measured period. */
  deliveriesPerS: number;
  /** Messages whose deliveries all arrived, per second. */
  messagesPerS: number;
  deliveries: number;
  /** Deliveries over the whole run (warm-up and drain included), for CPU time per delivery. */
  deliveriesTotal: number;
  sent: number;
  acked: number;
  errorFrames: Record<string, number>;
  /** Deliveries given up on (their message stalled). */
  lost: number;
  /** Frames members got that were not benchmark messages (presence, unread counts, ...). */
  otherFrames: number;
  /** Sockets that closed during the run, by close code. */
  closes: Record<string, number>;
  /** CPU the load generator used over the measured period, in cores (1 = one core busy). */
  loadCores: number;
  measuredS: number;
}

/** Sends at a fixed rate and times each delivery from its send. */
export interface LatencyCommand extends SendPlan {
  cmd: 'latency';
  ratePerS: number;
  /** How long to wait for the last deliveries after the last send. */
  drainMs: number;
}

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LatencyResult {
  all: LatencySummary;
  /** The same by the label of the receiving socket's server. */
  byLabel: Record<string, LatencySummary>;
  sent: number;
  acked: number;
  expected: number;
  received: number;
  errorFrames: Record<string, number>;
  otherFrames: number;
  closes: Record<string, number>;
  loadCores: number;
}

/** Waits until members have received no frame at all for `quietMs` (presence storms after connecting). */
export interface QuietCommand {
  cmd: 'quiet';
  groups: string[];
  quietMs: number;
  timeoutMs: number;
}

export interface CloseCommand {
  cmd: 'close';
  group: string;
}

export type LoadCommand = ConnectCommand | ThroughputCommand | LatencyCommand | QuietCommand | CloseCommand;

interface CommandResults {
  connect: ConnectResult;
  throughput: ThroughputResult;
  latency: LatencyResult;
  quiet: { waitedMs: number; frames: number; quiet: boolean };
  close: { closed: number };
}

export type LoadReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export interface LoadProcess {
  pid: number;
  run<C extends LoadCommand>(command: C): Promise<CommandResults[C['cmd']]>;
  stop(): Promise<void>;
}

export function startLoadProcess(name = 'load'): LoadProcess {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, LOAD_SCRIPT], {
    env: { ...process.env, TSX_TSCONFIG_PATH: PROJECT_TSCONFIG },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (line) => console.error(`[${name}] ${line}`));
  }
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  child.on('message', (reply: LoadReply) => {
    const waiting = pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id);
    if (reply.ok) waiting.resolve(reply.result);
    else waiting.reject(new Error(`${name}: ${reply.error}`));
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const waiting of pending.values()) {
        waiting.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      }
      pending.clear();
      resolve();
    }),
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  onCleanup(
    `stop ${name}`,
    () => stop(),
    () => void child.kill('SIGKILL'),
  );
  return {
    pid: child.pid!,
    run: <C extends LoadCommand>(command: C) =>
      new Promise<CommandResults[C['cmd']]>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, ...command });
      }),
    stop,
  };
}
