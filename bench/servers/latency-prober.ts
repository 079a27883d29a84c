// A latency prober for the benchmarks, in a process of its own: the load generator's busy event loop would
// otherwise delay the probes and be measured as the server's latency. It is told what to probe over a small
// HTTP server of its own (127.0.0.1; the port is announced like a server's, see bench/lib/child.ts):
//   POST /start {"targets": {"<name>": "<url>", …}, "everyMs": 50}
//        GETs every target in turn, then waits for the rest of everyMs, until stopped; each target has one
//        keep-alive connection of its own. A probe counts only when answered 200.
//   POST /stop → {"<name>": [ms, …], …}  stops, and returns each target's latencies since /start
// Kept free of heavy imports, like the servers.
import http from 'node:http';
import { announceReady } from '../lib/child.js';

interface Probing {
  stop(): Promise<Record<string, number[]>>;
}

function startProbing(targets: Record<string, string>, everyMs: number): Probing {
  const latencies: Record<string, number[]> = {};
  const agents: Record<string, http.Agent> = {};
  for (const name of Object.keys(targets)) {
    latencies[name] = [];
    agents[name] = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }
  const get = (name: string) =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      http
        .get(targets[name]!, { agent: agents[name] }, (response) => {
          response.resume();
          response.once('end', () => {
            if (response.statusCode !== 200) reject(new Error(`${name}: ${response.statusCode}`));
            else resolve(void latencies[name]!.push(performance.now() - started));
          });
        })
        .once('error', reject);
    });
  let running = true;
  let failure: Error | undefined;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      for (const name of Object.keys(targets)) await get(name);
      const rest = Math.max(0, everyMs - (performance.now() - started));
      await new Promise((resolve) => setTimeout(resolve, rest));
    }
  })().catch((error: Error) => {
    failure = error; // the probing ends; /stop reports it
  });
  return {
    stop: async () => {
      running = false;
      await loop;
      for (const agent of Object.values(agents)) agent.destroy();
      if (failure) throw failure;
      return latencies;
    },
  };
}

let probing: Probing | undefined;

const control = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', async () => {
    try {
      if (request.url === '/start' && !probing) {
        const { targets, everyMs } = JSON.parse(Buffer.concat(chunks).toString()) as {
          targets: Record<string, string>;
          everyMs: number;
        };
        probing = startProbing(targets, everyMs);
        response.writeHead(204).end();
      } else if (request.url === '/stop' && probing) {
        const latencies = await probing.stop();
        probing = undefined;
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(latencies));
      } else {
        response.writeHead(409).end(`cannot ${request.url} now`);
      }
    } catch (error) {
      probing = undefined;
      response.writeHead(500).end((error as Error).message);
    }
  });
});
control.listen(0, '127.0.0.1', () => announceReady((control.address() as { port: number }).port));
process.once('SIGTERM', () => control.close(() => process.exit(0)));
