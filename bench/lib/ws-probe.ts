// Measurements taken inside a server under test for bench:ws, read by the benchmark over a small HTTP
// server of its own (127.0.0.1, a free port written to the file named by BENCH_PROBE_FILE), so the server's
// code needs no route for them:
//   GET /loop?reset=1   event-loop delay since the last reset (perf_hooks.monitorEventLoopDelay), in ms
//   GET /memory?gc=1    process.memoryUsage() in bytes, after a full garbage collection when the process
//                       runs with --expose-gc
// Kept free of heavy imports: server scripts load it before anything they measure.
import fs from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  samples: number;
}

export type MemoryReport = NodeJS.MemoryUsage & { gc: boolean };

/** Sampling interval of the delay monitor: a 5 ms timer that fires late by the loop's longest stall. */
const RESOLUTION_MS = 5;

export function startProbe(file = process.env.BENCH_PROBE_FILE): void {
  if (!file) return;
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://probe');
    let body: unknown;
    if (url.pathname === '/loop') {
      const loop: LoopDelay = {
        p50Ms: ms(histogram.percentile(50)),
        p99Ms: ms(histogram.percentile(99)),
        maxMs: ms(histogram.max),
        meanMs: ms(histogram.mean),
        samples: histogram.count,
      };
      if (url.searchParams.get('reset') === '1') histogram.reset();
      body = loop;
    } else if (url.pathname === '/memory') {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (url.searchParams.get('gc') === '1' && gc) {
        gc();
        gc();
      }
      body = { ...process.memoryUsage(), gc: gc !== undefined } satisfies MemoryReport;
    } else {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  // Neither the probe nor its timer may keep a server alive once it has shut down.
  server.listen(0, '127.0.0.1', () => {
    server.unref();
    fs.writeFileSync(file, JSON.stringify({ port: (server.address() as { port: number }).port }));
  });
}
