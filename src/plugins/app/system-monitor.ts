// Process figures for health: memory, CPU share and event-loop delay p99 over the last sampling window.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import fp from 'fastify-plugin';

export interface SystemSnapshot {
  rss_bytes: number;
  heap_used_bytes: number;
  event_loop_delay_p99_ms: number;
  cpu_percent: number;
}

const WINDOW_MS = 5_000;

export class SystemMonitor {
  private readonly histogram = monitorEventLoopDelay({ resolution: 10 });
  private timer: NodeJS.Timeout | undefined;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private p99Ms = 0;
  private cpuPercent = 0;

  start(): void {
    this.histogram.enable();
    this.timer = setInterval(() => this.sample(), WINDOW_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  snapshot(): SystemSnapshot {
    const memory = process.memoryUsage();
    // Before the first window closes, report what has been seen so far.
    const p99 = this.p99Ms || this.histogram.percentile(99) / 1e6;
    return {
      rss_bytes: memory.rss,
      heap_used_bytes: memory.heapUsed,
      event_loop_delay_p99_ms: round(p99),
      cpu_percent: round(this.cpuPercent),
    };
  }

  private sample(): void {
    this.p99Ms = this.histogram.percentile(99) / 1e6;
    this.histogram.reset();
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    this.cpuPercent = ((cpu.user + cpu.system) / 1000 / (now - this.lastAt)) * 100;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

declare module 'fastify' {
  interface FastifyInstance {
    system: SystemMonitor;
  }
}

export default fp(
  async function systemMonitorPlugin(fastify) {
    const monitor = new SystemMonitor();
    fastify.decorate('system', monitor);
    fastify.addHook('onReady', async () => monitor.start());
    fastify.addHook('onClose', async () => monitor.stop());
  },
  { name: 'system-monitor' },
);
