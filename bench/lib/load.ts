// One load run with autocannon's programmatic API (in this process; the server runs in another).
import autocannon from 'autocannon';
import type { CpuTime } from './server.js';

export interface LoadOptions {
  url: string;
  durationS: number;
  connections?: number;
  pipelining?: number;
  method?: autocannon.Request['method'];
  headers?: Record<string, string>;
  body?: string;
  title?: string;
  /** Requests per second across all connections (fixed-rate load, for latency under a known load). */
  overallRate?: number;
  /** Requests per second per connection. */
  connectionRate?: number;
  /** Per-request setup (e.g. a body that varies), as autocannon takes it. */
  requests?: autocannon.Request[];
}

export interface LoadResult {
  /** Successful (2xx) responses per second over the run. */
  rps: number;
  /** Every response per second, whatever its status. */
  responsesPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyAvgMs: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
}

export const DEFAULT_CONNECTIONS = 50;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    duration: options.durationS,
    connections: options.connections ?? DEFAULT_CONNECTIONS,
    pipelining: options.pipelining ?? 1,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    title: options.title,
    overallRate: options.overallRate,
    connectionRate: options.connectionRate,
    requests: options.requests,
  });
  const durationS = result.duration;
  return {
    rps: result['2xx'] / durationS,
    responsesPerS: result.requests.total / durationS,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    latencyAvgMs: result.latency.average,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS,
  };
}

export interface ServerCpu {
  /** Cores the server kept busy on average over the run (all threads), e.g. 1.4. */
  cores: number;
  /** The same for its main thread alone (at most 1: the event loop is one thread). */
  mainCores: number;
  /**
   * Server CPU time per response, in microseconds (all threads / main thread). Unlike req/s it hardly
   * depends on what else the machine is running, so it is the steadier figure on a busy machine.
   */
  usPerRequest: number;
  mainUsPerRequest: number;
}

/** Runs the load and measures the server process's CPU use over it (Linux; undefined elsewhere). */
export async function runLoadOn(
  server: { cpuTime(): CpuTime | undefined },
  options: LoadOptions,
): Promise<LoadResult & { cpu: ServerCpu | undefined }> {
  const before = server.cpuTime();
  const started = performance.now();
  const result = await runLoad(options);
  const after = server.cpuTime();
  const elapsedS = (performance.now() - started) / 1000;
  if (!before || !after) return { ...result, cpu: undefined };
  const total = after.total - before.total;
  const main = after.main - before.main;
  const cpu = {
    cores: total / elapsedS,
    mainCores: main / elapsedS,
    usPerRequest: (total / Math.max(1, result.requests)) * 1e6,
    mainUsPerRequest: (main / Math.max(1, result.requests)) * 1e6,
  };
  return { ...result, cpu };
}
