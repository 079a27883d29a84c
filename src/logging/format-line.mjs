// The human-readable form of a log entry for main.log: one line, "time LEVEL msg {other fields}".
// Hand-rolled rather than pino-pretty: it runs for every line in the log worker, and on a two-core
// machine that worker competes with the server for CPU.
const SKIP = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'stream']);

/** @param {Record<string, unknown>} entry */
export function formatLine(entry) {
  const rest = {};
  let hasRest = false;
  for (const key in entry) {
    if (SKIP.has(key)) continue;
    rest[key] = entry[key];
    hasRest = true;
  }
  const level = String(entry.level ?? '')
    .toUpperCase()
    .padEnd(5);
  return `${entry.time} ${level} ${entry.msg ?? ''}${hasRest ? ` ${JSON.stringify(rest)}` : ''}\n`;
}
