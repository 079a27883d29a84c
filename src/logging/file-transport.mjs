// Pino transport (runs in pino's worker thread, so disk writes never block the event loop).
// One worker serves every logger: each line is routed by its `stream` binding to rotated files written by
// pino-roll — security and audit events to their own files, everything else to main.json (JSON lines) and
// main.log (the same lines made human-readable) — and, optionally, to the console.
// Plain JavaScript on purpose: a worker thread cannot load TypeScript under every runner we use.
import { once } from 'node:events';
import path from 'node:path';
import build from 'pino-abstract-transport';
import { prettyFactory } from 'pino-pretty';
import roll from 'pino-roll';
import SonicBoom from 'sonic-boom';
import { formatLine } from './format-line.mjs';

// Console only (a person is watching): pino-pretty's colours and layout.
const PRETTY_OPTIONS = {
  translateTime: 'UTC:yyyy-mm-dd HH:MM:ss.l o',
  ignore: 'pid,hostname,stream',
  singleLine: true,
};

/**
 * @param {{ dir: string, size: string, frequency: 'daily' | 'hourly', retention: number,
 *           console: 'pretty' | 'json' | 'off' }} options
 */
export default async function fileTransport(options) {
  const open = (fileName) =>
    roll({
      file: path.join(options.dir, fileName),
      size: options.size,
      frequency: options.frequency,
      dateFormat: options.frequency === 'hourly' ? 'yyyy-MM-dd-HH' : 'yyyy-MM-dd',
      // Also prune files left by earlier runs, or restarts would fill the disk.
      limit: { count: options.retention, removeOtherLogFiles: true },
      mkdir: true,
    });
  const files = {
    mainJson: await open('main.json'),
    mainText: await open('main.log'),
    security: await open('security.log'),
    audit: await open('audit.log'),
  };
  const streams = Object.values(files);
  let consoleOut;
  let formatConsole;
  if (options.console !== 'off') {
    consoleOut = new SonicBoom({ dest: 1, sync: false });
    streams.push(consoleOut);
    if (options.console === 'pretty') formatConsole = prettyFactory({ ...PRETTY_OPTIONS, colorize: true });
  }

  return build(
    async function route(source) {
      for await (const line of source) {
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue; // pino only sends JSON lines; anything else is not ours to keep
        }
        if (entry.stream === 'security') files.security.write(line + '\n');
        else if (entry.stream === 'audit') files.audit.write(line + '\n');
        else {
          files.mainJson.write(line + '\n');
          files.mainText.write(formatLine(entry)); // one line per entry: grep and tail work
        }
        if (consoleOut) consoleOut.write(formatConsole ? formatConsole(entry) : line + '\n');
      }
    },
    {
      parse: 'lines',
      async close() {
        // Flush every file before the worker exits, so shutdown loses nothing.
        await Promise.all(
          streams.map(async (stream) => {
            if (stream.destroyed) return;
            stream.end();
            await once(stream, 'close');
          }),
        );
      },
    },
  );
}
