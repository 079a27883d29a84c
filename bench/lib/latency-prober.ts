// The benchmark's side of bench/servers/latency-prober.ts: latency probes taken from a process of their
// own, so that the load this process generates does not delay them.
import { fileURLToPath } from 'node:url';
import { cleanEnvironment } from './app.js';
import { startServerProcess } from './server.js';

const PROBER_SCRIPT = fileURLToPath(new URL('../servers/latency-prober.ts', import.meta.url));

export interface LatencyProber {
  /** Starts probing every target (name → URL) in turn, every `everyMs`. */
  start(targets: Record<string, string>, everyMs: number): Promise<void>;
  /** Stops, and returns each target's latencies in ms since `start`. */
  stop(): Promise<Record<string, number[]>>;
}

export async function startLatencyProber(): Promise<LatencyProber> {
  const prober = await startServerProcess({ name: 'prober', script: PROBER_SCRIPT, env: cleanEnvironment() });
  const post = async (path: string, body?: unknown) => {
    const response = await fetch(prober.url(path), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    if (!response.ok) throw new Error(`prober ${path}: ${response.status} ${await response.text()}`);
    return response;
  };
  return {
    start: async (targets, everyMs) => void (await post('/start', { targets, everyMs })),
    stop: async () => (await (await post('/stop')).json()) as Record<string, number[]>,
  };
}
