// The servers bench:ws measures, each in its own process with the probe of ws-probe.ts inside:
// - the raw `ws` broadcast baseline (bench/servers/raw-ws.ts);
// - Switchboard, started as bench/lib/app.ts starts it (production settings, logs to files, a temporary
//   working folder) but with a secret chosen by the benchmark, so that several instances on one database
//   accept the same access tokens (the cross-instance measurement).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnvironment, productionSettings } from './app.js';
import { makeTempDir } from './cleanup.js';
import { startServerProcess, type ServerProcess } from './server.js';
import type { LoopDelay, MemoryReport } from './ws-probe.js';

const RAW_SCRIPT = fileURLToPath(new URL('../servers/raw-ws.ts', import.meta.url));
const APP_SCRIPT = fileURLToPath(new URL('./ws-app-server.ts', import.meta.url));

export interface ProbedServer extends ServerProcess {
  /** Event-loop delay since the previous call (each call starts a new measurement). */
  loopDelay(): Promise<LoopDelay>;
  /** Memory of the server process, after a full garbage collection. */
  memory(): Promise<MemoryReport>;
  /** `ws://127.0.0.1:<port><path>` */
  wsUrl(path: string): string;
}

export interface WsAppServer extends ProbedServer {
  /** The settings it was started with (the secret masked), for the report. */
  settings: Record<string, string>;
  /** Lines of its main log (text files in LOG_DIR) that match. */
  logLines(pattern: RegExp): string[];
  /** Waits for a line of its main log that matches; undefined after `timeoutMs`. */
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<string | undefined>;
}

export async function startRawWsServer(): Promise<ProbedServer> {
  const probeFile = path.join(makeTempDir('switchboard-bench-ws-raw'), 'probe.json');
  const server = await startServerProcess({
    name: 'raw-ws',
    script: RAW_SCRIPT,
    env: { ...cleanEnvironment(), BENCH_PROBE_FILE: probeFile },
    nodeArgs: ['--expose-gc'],
  });
  return withProbe(server, probeFile);
}

export async function startWsApp(options: {
  database: { url: string; name: string };
  secret: string;
  settings?: Record<string, string>;
  name?: string;
}): Promise<WsAppServer> {
  const home = makeTempDir('switchboard-bench-ws-app');
  const settings = productionSettings(home, options.database, options.settings);
  const probeFile = path.join(home, 'probe.json');
  const server = await startServerProcess({
    name: options.name ?? 'app',
    script: APP_SCRIPT,
    cwd: home,
    env: {
      ...cleanEnvironment(),
      ...settings,
      SECRET_KEY: options.secret,
      CONFIG_DIR: path.join(home, 'config'),
      BENCH_PROBE_FILE: probeFile,
    },
    readyTimeoutMs: 90_000,
    nodeArgs: ['--expose-gc'],
  });
  const logDir = settings.LOG_DIR!;
  const logLines = (pattern: RegExp) => {
    if (!fs.existsSync(logDir)) return [];
    return fs
      .readdirSync(logDir)
      .filter((file) => file.startsWith('main') && file.endsWith('.log'))
      .sort()
      .flatMap((file) => fs.readFileSync(path.join(logDir, file), 'utf8').split('\n'))
      .filter((line) => pattern.test(line));
  };
  return {
    ...withProbe(server, probeFile),
    settings: { ...settings, SECRET_KEY: `[set, ${options.secret.length} chars]` },
    logLines,
    waitForLog: async (pattern, timeoutMs) => {
      const until = performance.now() + timeoutMs;
      while (performance.now() < until) {
        const [line] = logLines(pattern);
        if (line) return line;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return undefined;
    },
  };
}

function withProbe(server: ServerProcess, probeFile: string): ProbedServer {
  let port: number | undefined;
  const get = async <T>(query: string): Promise<T> => {
    for (let attempt = 0; port === undefined; attempt++) {
      try {
        port = (JSON.parse(fs.readFileSync(probeFile, 'utf8')) as { port: number }).port;
      } catch (error) {
        if (attempt >= 50) throw new Error(`${server.name}: no probe (${(error as Error).message})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const response = await fetch(`http://127.0.0.1:${port}${query}`);
    if (!response.ok) throw new Error(`${server.name} probe ${query}: ${response.status}`);
    return (await response.json()) as T;
  };
  return {
    ...server,
    loopDelay: () => get<LoopDelay>('/loop?reset=1'),
    memory: () => get<MemoryReport>('/memory?gc=1'),
    wsUrl: (urlPath: string) => `ws://127.0.0.1:${server.port}${urlPath}`,
  };
}
