// The log files in LOG_DIR, for administrators: a listing, and the last lines of one file, filtered.
// Only names of the shape pino-roll writes (`main.2026-11-27.1.json`, `audit.2026-11-27-14.3.log`) or a
// log's logical name (`main.log`, `main.json`, `security.log`, `audit.log`: its newest file) can be read,
// and only regular files directly in LOG_DIR: no path, no symlink, nothing else there.
//
// Tailing reads the file backwards in blocks, so the cost follows what is returned, not the file's size.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Errors } from '../errors.js';

const ROLLED_NAME = /^(main|security|audit)\.(\d{4}-\d{2}-\d{2}(?:-\d{2})?)\.(\d{1,6})\.(log|json)$/;
const LOGICAL_NAMES = ['main.log', 'main.json', 'security.log', 'audit.log'] as const;
/** A name an admin may ask for: a rolled file or a logical name. */
export const LOG_NAME_PATTERN = new RegExp(
  `${ROLLED_NAME.source}|^(${LOGICAL_NAMES.join('|').replaceAll('.', '\\.')})$`,
);
const BLOCK_BYTES = 64 * 1024;
/** Longer lines are cut: one runaway line must not fill the answer. */
const MAX_LINE_CHARS = 16 * 1024;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LEVELS)[number];

export interface LogFile {
  name: string;
  /** The logical log it belongs to (`main.log`, `main.json`, `security.log`, `audit.log`). */
  log: string;
  /** `text` (main.log: readable lines) or `json` (one JSON object per line). */
  format: 'text' | 'json';
  size: number;
  modified: string;
  /** The file being written now (the newest of its log). */
  current: boolean;
}

export interface TailQuery {
  tail: number;
  since?: Date;
  level?: LogLevel;
  q?: string;
}

export class LogFiles {
  constructor(private readonly dir: string) {}

  async list(): Promise<LogFile[]> {
    const entries = await fsp.readdir(this.dir, { withFileTypes: true }).catch(() => []);
    const files: LogFile[] = [];
    for (const entry of entries) {
      const match = ROLLED_NAME.exec(entry.name);
      if (!match || !entry.isFile()) continue; // symlinks and folders are never listed
      const stats = await fsp.stat(path.join(this.dir, entry.name)).catch(() => null);
      if (!stats) continue;
      const log = `${match[1]}.${match[4]}`;
      files.push({
        name: entry.name,
        log,
        format: log === 'main.log' ? 'text' : 'json',
        size: stats.size,
        modified: stats.mtime.toISOString(),
        current: false,
      });
    }
    files.sort((a, b) => b.modified.localeCompare(a.modified) || b.name.localeCompare(a.name));
    for (const log of LOGICAL_NAMES) {
      const newest = files.find((file) => file.log === log);
      if (newest) newest.current = true;
    }
    return files;
  }

  /** The last `tail` lines of a file that pass the filters, oldest first. */
  async tail(
    name: string,
    query: TailQuery,
  ): Promise<{ file: LogFile; lines: string[]; truncated: boolean }> {
    const file = await this.resolve(name);
    const handle = await fsp.open(path.join(this.dir, file.name), 'r');
    try {
      const accepted: string[] = [];
      let position = (await handle.stat()).size;
      let carry = Buffer.alloc(0); // the start of a line whose beginning is in an earlier block
      let reachedSince = false;
      while (position > 0 && accepted.length < query.tail && !reachedSince) {
        const length = Math.min(BLOCK_BYTES, position);
        position -= length;
        const block = Buffer.alloc(length);
        await handle.read(block, 0, length, position);
        const bytes = Buffer.concat([block, carry]);
        // Everything after the first newline is made of whole lines; what comes before waits for more.
        const firstNewline = position > 0 ? bytes.indexOf(0x0a) : -1;
        carry = firstNewline >= 0 ? bytes.subarray(0, firstNewline) : Buffer.alloc(0);
        const whole = firstNewline >= 0 ? bytes.subarray(firstNewline + 1) : bytes;
        const lines = whole.toString('utf8').split('\n');
        for (let index = lines.length - 1; index >= 0 && accepted.length < query.tail; index -= 1) {
          const line = lines[index]!;
          if (!line) continue;
          const verdict = judge(line, file.format, query);
          if (verdict === 'older') {
            reachedSince = true; // lines are in time order: nothing earlier can match
            break;
          }
          if (verdict === 'keep')
            accepted.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
        }
        if (carry.length > MAX_LINE_CHARS * 4) carry = carry.subarray(carry.length - MAX_LINE_CHARS * 4);
      }
      return { file, lines: accepted.reverse(), truncated: position > 0 && accepted.length >= query.tail };
    } finally {
      await handle.close();
    }
  }

  /** A listed file by name or logical name; LOG_NOT_FOUND for anything else. */
  private async resolve(name: string): Promise<LogFile> {
    if (!LOG_NAME_PATTERN.test(name)) throw new Errors.LOG_NOT_FOUND(name);
    const files = await this.list();
    const file =
      files.find((entry) => entry.name === name) ??
      files.find((entry) => entry.current && entry.log === name);
    if (!file) throw new Errors.LOG_NOT_FOUND(name);
    // Listed means a regular file directly in LOG_DIR; check again that it did not become a link since.
    const stats = await fsp.lstat(path.join(this.dir, file.name)).catch(() => null);
    if (!stats?.isFile()) throw new Errors.LOG_NOT_FOUND(name);
    return file;
  }
}

/** Whether a line passes the filters; `older` when it is before `since` (the scan can stop). */
function judge(line: string, format: 'text' | 'json', query: TailQuery): 'keep' | 'skip' | 'older' {
  if (query.q && !line.includes(query.q)) return 'skip';
  if (!query.since && !query.level) return 'keep';
  const { time, level } = format === 'json' ? fromJson(line) : fromText(line);
  if (query.since && time !== undefined && time < query.since.getTime()) return 'older';
  if (query.level && (level === undefined || LEVELS.indexOf(level) < LEVELS.indexOf(query.level)))
    return 'skip';
  return 'keep';
}

function fromJson(line: string): { time?: number; level?: LogLevel } {
  try {
    const entry = JSON.parse(line) as { time?: unknown; level?: unknown };
    return {
      time:
        typeof entry.time === 'string' || typeof entry.time === 'number'
          ? new Date(entry.time).getTime()
          : undefined,
      level: LEVELS.find((level) => level === entry.level),
    };
  } catch {
    return {};
  }
}

/** main.log lines start with the time and the level: `2026-11-27T09:34:06.712Z INFO  …`. */
function fromText(line: string): { time?: number; level?: LogLevel } {
  const match = /^(\S+)\s+([A-Z]+)\s/.exec(line);
  if (!match) return {};
  const time = Date.parse(match[1]!);
  return {
    time: Number.isNaN(time) ? undefined : time,
    level: LEVELS.find((level) => level === match[2]!.toLowerCase()),
  };
}
