// Turns what a client sent into fired rules: every string of the path, query, chosen headers, JSON body or
// frame is matched against the signatures. Where a value sits decides what a match means: in a
// structural field (an id, a name, a query parameter, a header) it is an attack signature; in what people
// write (message content, descriptions, bios, search text) it is chat, scored as content (observe only).
import type { FiredRule, RuleId } from './rules.js';
import {
  isProbePath,
  isScannerAgent,
  matchSignatures,
  percentDecode,
  type SignatureFamily,
} from './signatures.js';

const STRUCTURAL: Record<SignatureFamily, RuleId> = {
  sqli: 'injection.sql',
  xss: 'injection.xss',
  cmdi: 'injection.command',
  traversal: 'traversal.path',
  nosql: 'injection.nosql_signature',
};

const CONTENT: Record<SignatureFamily, RuleId> = {
  sqli: 'content.sql',
  xss: 'content.xss',
  cmdi: 'content.command',
  traversal: 'content.traversal',
  nosql: 'content.nosql',
};

/** Fields that hold free text people write: messages, announcements, descriptions, bios, search text. */
const CONTENT_FIELDS = new Set([
  'content',
  'description',
  'title',
  'bio',
  'about',
  'designation',
  'status_text',
  'text',
  'topic',
  'q',
  'data', // an announcement's body in the original clients' frames
]);

/** Never inspected (and never copied into an event): secrets are anything their owner chose. */
const SECRET_FIELDS = new Set([
  'password',
  'current_password',
  'new_password',
  'refresh_token',
  'access_token',
  'token',
  'ticket',
  'set_password_token',
  'sig',
]);

/** Request headers a client controls and an attacker uses; the rest are not scored. */
const SCORED_HEADERS = [
  'user-agent',
  'referer',
  'origin',
  'cookie',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-original-url',
  'x-rewrite-url',
  'x-request-id',
] as const;

/** Bounds on how much of a body is walked: the rules need the fields, not every byte of a list. */
const MAX_DEPTH = 6;
const MAX_VALUES = 300;

class Collector {
  readonly fired: FiredRule[] = [];
  private seen = 0;

  string(value: string, where: string, content: boolean): void {
    if (this.seen++ >= MAX_VALUES) return;
    for (const family of matchSignatures(value))
      this.fired.push({ id: content ? CONTENT[family] : STRUCTURAL[family], where });
  }

  /** Walks JSON: `$` keys (and, in HTTP bodies, dotted keys) are operator injection wherever they are. */
  value(value: unknown, where: string, field: string, depth: number, dottedKeys: boolean): void {
    if (typeof value === 'string') {
      if (!SECRET_FIELDS.has(field)) this.string(value, where, CONTENT_FIELDS.has(field));
    } else if (Array.isArray(value)) {
      if (depth >= MAX_DEPTH) return;
      for (let i = 0; i < value.length && this.seen < MAX_VALUES; i++)
        this.value(value[i], `${where}[${i}]`, field, depth + 1, dottedKeys);
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_DEPTH) return;
      for (const key of Object.keys(value)) {
        if (this.seen >= MAX_VALUES) return;
        if (key.startsWith('$') || (dottedKeys && key.includes('.')))
          this.fired.push({ id: 'injection.nosql_operator', where: `${where}.${key.slice(0, 40)}` });
        this.value(
          (value as Record<string, unknown>)[key],
          `${where}.${key.slice(0, 40)}`,
          key,
          depth + 1,
          dottedKeys,
        );
      }
    }
  }
}

export interface RequestParts {
  /** The URL path without its query. */
  path: string;
  query: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, when there is one. */
  body?: unknown;
  /** No route matched: probes for scanner paths count. */
  notFound: boolean;
}

/** The rules an HTTP request's path, query and headers fire (no body: that is parsed later). */
export function inspectRequestHead(parts: RequestParts): FiredRule[] {
  const collector = new Collector();
  // The path arrives percent-encoded (the query reaches us decoded): one layer off first, as a route
  // parameter would see it.
  collector.string(percentDecode(parts.path), 'path', false);
  if (parts.notFound && isProbePath(parts.path))
    collector.fired.push({ id: 'reconnaissance.probe_path', where: 'path' });
  if (parts.query && typeof parts.query === 'object') {
    for (const [key, value] of Object.entries(parts.query as Record<string, unknown>)) {
      // The query parser keeps `email[$ne]=` as a key: an operator smuggled in a key name.
      if (key.startsWith('$') || /\[\s*\$/.test(key))
        collector.fired.push({ id: 'injection.nosql_operator', where: `query.${key.slice(0, 40)}` });
      else collector.string(key, `query.${key.slice(0, 40)}`, false);
      collector.value(value, `query.${key.slice(0, 40)}`, key, 1, false);
    }
  }
  for (const name of SCORED_HEADERS) {
    const raw = parts.headers[name];
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    if (!value) continue;
    if (name === 'user-agent' && isScannerAgent(value))
      collector.fired.push({ id: 'reconnaissance.scanner_agent', where: 'header.user-agent' });
    if (name === 'referer') inspectReferer(collector, value);
    else if (name === 'cookie') inspectCookies(collector, value);
    else collector.string(value, `header.${name}`, false);
  }
  return collector.fired;
}

/** A referer is a URL: its path and each query value are judged on their own, like ours. */
function inspectReferer(collector: Collector, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    collector.string(value, 'header.referer', false);
    return;
  }
  collector.string(url.pathname, 'header.referer', false);
  for (const [key, param] of url.searchParams) collector.value(param, 'header.referer', key, 1, false);
}

/** `a=1; b=2`: each value on its own (the separators are not shell syntax). */
function inspectCookies(collector: Collector, value: string): void {
  for (const pair of value.split(';', 50)) {
    const equals = pair.indexOf('=');
    collector.string(equals >= 0 ? pair.slice(equals + 1) : pair, 'header.cookie', false);
  }
}

/** The rules a parsed JSON body fires. */
export function inspectBody(body: unknown): FiredRule[] {
  if (body === null || typeof body !== 'object') return [];
  const collector = new Collector();
  collector.value(body, 'body', '', 0, true);
  return collector.fired;
}

/** The rules a WebSocket frame fires (its keys may be channel names, which contain dots). */
export function inspectFrame(frame: object): FiredRule[] {
  const collector = new Collector();
  collector.value(frame, 'frame', '', 0, false);
  return collector.fired;
}

/** One structural value checked on its own (an uploaded file's name). */
export function inspectField(value: string, where: string): FiredRule[] {
  const collector = new Collector();
  collector.string(value, where, false);
  return collector.fired;
}
