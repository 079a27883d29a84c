// What the on/off benchmarks share (bench:observability, bench:security): two copies of the app, the
// same send load on each in alternating rounds, and a table of the medians per copy.
import { loginBenchAdmin, type AppServer } from './app.js';
import type { LoadResult, ServerCpu } from './load.js';
import { createPublicChannel, sendLoad } from './messages.js';
import { printTable } from './report.js';
import { median, round } from './stats.js';

export type Copy = 'on' | 'off';

export interface CopyRound extends LoadResult {
  copy: Copy;
  round: number;
  cpu: ServerCpu | undefined;
}

export interface CopySummary {
  rps: number;
  p99: number;
  /** Server CPU per request, µs. */
  us: number;
  non2xx: number;
}

/** The medians of each copy's rounds, printed as a table. */
export function summariseCopies(rounds: readonly CopyRound[]): Record<Copy, CopySummary> {
  const summary = (copy: Copy): CopySummary => {
    const mine = rounds.filter((r) => r.copy === copy);
    return {
      rps: median(mine.map((r) => r.rps)),
      p99: median(mine.map((r) => r.latencyP99Ms)),
      us: median(mine.map((r) => r.cpu?.usPerRequest ?? Number.NaN)),
      non2xx: mine.reduce((sum, r) => sum + r.non2xx, 0),
    };
  };
  const summaries = { on: summary('on'), off: summary('off') };
  printTable(
    ['copy', 'median req/s', 'median p99 ms', 'CPU µs/req', 'non-2xx'],
    (['on', 'off'] as const).map((copy) => {
      const s = summaries[copy];
      return [copy, Math.round(s.rps), s.p99, round(s.us, 1), s.non2xx];
    }),
  );
  return summaries;
}

/**
 * Signs the bench admin in on each copy and makes `channels` public channels there; returns the send load
 * (POST /api/v2/messages to those channels at random) for either copy.
 */
export async function copySenders(
  apps: Record<Copy, AppServer>,
  options: { channels: number; connections: number },
): Promise<(copy: Copy, durationS: number) => ReturnType<typeof sendLoad>> {
  const prepare = async (app: AppServer) => {
    const token = await loginBenchAdmin(app);
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const channelIds: string[] = [];
    for (let n = 0; n < options.channels; n++)
      channelIds.push(await createPublicChannel(app, headers, `bench-${n}`));
    return { app, headers, channelIds };
  };
  const copies = { on: await prepare(apps.on), off: await prepare(apps.off) };
  return (copy, durationS) => {
    const { app, headers, channelIds } = copies[copy];
    const url = app.url('/api/v2/messages');
    return sendLoad(app, { url, headers, channelIds, durationS, connections: options.connections });
  };
}
