// Fuzzing (report section `fuzz`): property-based inputs (fast-check) for every REST operation in the running
// server's own OpenAPI document (so a new route is fuzzed without a change here) and every WebSocket frame
// type of src/realtime/protocol.ts, as an admin and as a member. Path parameters, query strings and bodies
// are generated from each operation's schemas: valid requests (real ids of fresh fixtures where a name fits),
// valid requests with exactly one thing wrong, requests wrong everywhere (violated bounds, edge values:
// empty, huge, unicode, NUL, nesting, arrays, numbers as strings, negatives, $-keys, __proto__; wrong types),
// fully arbitrary JSON, raw garbage under content-type json, other content types, multipart and CSV bodies.
// Frames get the same per type (valid, one field wrong, all wrong, arbitrary fields, huge strings, deep
// nesting), plus malformed frames (not JSON, not an object, unknown or non-string type, bad id, binary).
//
// Properties: no answer is a 5xx (503 included: the database is up); the server process stays alive and
// health answers 200 after every batch; a write answered with a 4xx leaves no trace (document counts of
// COUNTED before and after, on the server's database, and the fixture documents of FIXTURE_DOCUMENTS); a
// frame with an id gets its `ack` or `error`; a bad frame gets an `error` and the socket stays open (only
// an oversized frame may close it, with the documented 1009); a rejected frame stores nothing.
//
// The server runs with DETECTION_ENABLED=false: the fuzzer sends attack-looking strings on purpose, and
// with detection on it would be banned (403 BLOCKED / close 4429, correct behaviour) long before it reached
// most routes (so the three detection routes only answer 404 DETECTION_DISABLED here). Nothing is skipped:
// logging out is fuzzed on the fuzzing session itself, which signs in again after it (and after any 401);
// POST /users/me/password never gets the caller's current password, so it is fuzzed up to 403 WRONG_PASSWORD
// (a success would change the fuzzing user's password under the run).
//
// Each property's failure is kept in fuzz-regressions.json (seed, path and the concrete counterexample,
// with fixture placeholders), and every kept case is replayed first on each run, against fresh fixtures.
// FUZZ_SEED=<n> repeats a run; RELIABILITY_FUZZ_RUNS=<n> sets the cases per target.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { MongoClient, type Db } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { COLLECTIONS } from '../../src/db/collections.js';
import { Errors, STATUS_FALLBACK_CODES } from '../../src/errors.js';
import { clientFrame, FRAME_TYPES, parseFrame } from '../../src/realtime/protocol.js';
import { uniqueDatabaseName } from '../helper.js';
import { multipartBody } from '../files/fixtures.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, strongPassword, unique, uniqueEmail } from '../identity/fixtures.js';
import {
  api,
  connectTo,
  login,
  ok,
  pause,
  sharedDatabaseUrl,
  startSwitchboard,
  stopEverything,
  type Person,
  type ServerProcess,
  type TestSocket,
} from './harness.js';
import { PROFILE } from './profile.js';
import { recordSection } from './report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REGRESSIONS_FILE = path.join(HERE, 'fuzz-regressions.json');

/** Cases per REST operation and per frame type (split between the two roles by the generator). */
const RUNS = PROFILE.fuzzRuns;
/**
 * A target's time limit, shrinking included: past it the run stops (a failure keeps the counterexample
 * found so far; an interrupted run is counted in the figures).
 */
const TARGET_LIMIT_MS = PROFILE.name === 'ci' ? 40_000 : 300_000;
/** Cases a failing property may try while shrinking its counterexample. */
const SHRINK_BUDGET = PROFILE.name === 'ci' ? 60 : 300;
const REQUEST_TIMEOUT_MS = 35_000;
const ANSWER_TIMEOUT_MS = 10_000;
/** The server's WS_MAX_FRAME default: a bigger frame is closed with 1009 (documented). */
const MAX_FRAME_BYTES = 64 * 1024;
/** Two thirds of the server's access-token lifetime (ACCESS_TOKEN_TTL, 900 s by default). */
const TOKEN_REFRESH_AFTER_MS = 10 * 60_000;
const BASE_SEED = Number.isSafeInteger(Number(process.env.FUZZ_SEED))
  ? Number(process.env.FUZZ_SEED)
  : Math.floor(Math.random() * 2 ** 31);

/** Collections a rejected input must leave untouched (counted before and after each rejected write). */
const COUNTED = [
  COLLECTIONS.messages,
  COLLECTIONS.channels,
  COLLECTIONS.users,
  COLLECTIONS.files,
  COLLECTIONS.announcements,
  COLLECTIONS.memberships,
  COLLECTIONS.userChannels,
  COLLECTIONS.notifications,
  COLLECTIONS.messageClientIds,
] as const;

/** Fixture documents a rejected input must leave unchanged: [collection, fixture name]. */
const FIXTURE_DOCUMENTS = [
  [COLLECTIONS.messages, 'message'],
  [COLLECTIONS.messages, 'other-message'],
  [COLLECTIONS.files, 'file'],
  [COLLECTIONS.announcements, 'announcement'],
] as const;

interface Snapshot {
  counts: number[];
  docs: string[];
}

// ---- cases: what a generator produces (JSON, so a counterexample can be kept and replayed) ----

type Role = 'admin' | 'member';
/** A body as sent: text (UTF-8) or bytes. */
type Body = { text: string } | { base64: string };

interface HttpCase {
  role: Role;
  method: string;
  /** Path and query, percent-encoded, with fixture placeholders (~~fx-name~~) filled in when sent. */
  url: string;
  contentType?: string;
  body?: Body;
  /** Which generator made it (valid, one-mutation, chaotic, arbitrary, garbage, content-type, multipart…). */
  variant: string;
}

interface FrameCase {
  role: Role;
  /** The frame as sent (text frame), or bytes sent as a binary frame. */
  frame: Body;
  /** The frame carries ~~fx-id~~ as its id: the answer must carry that id as `ref`. */
  withId: boolean;
  variant: string;
}

/** A server of the run: its name, database, log folder and environment. */
interface Deployment {
  name: 'fuzz' | 'fuzz-detection';
  databaseName: string;
  logDir: string;
  env: Record<string, string>;
}

interface Regression {
  kind: 'http' | 'frame';
  /** The server it failed on (fuzz: detection off; fuzz-detection: detection on); fuzz when absent. */
  server?: Deployment['name'];
  /** "POST /api/v2/messages" or "frame chat_message". */
  target: string;
  /** What failed, first line: the key that keeps one entry per target and kind of failure. */
  failure: string;
  seed: number;
  path: string;
  found_at: string;
  case: HttpCase | FrameCase;
  evidence?: unknown;
}

const ID_PLACEHOLDER = '~~fx-id~~';
const placeholder = (name: string) => `~~fx-${name}~~`;
const PLACEHOLDER = /~~fx-([a-z-]+)~~/g;

// ---- fixtures: fresh ids of real things, so generated requests also reach the routes' logic ----

type Fixtures = Record<string, string>;
/**
 * Fixtures made for the one case that names them (a user nobody has written to yet): what a first contact
 * does (a direct channel made on first use…) is fuzzed on every case that asks, shrinking included.
 */
const PER_CASE_FIXTURES = ['new-user', 'new-user-email'];

/** Fixture names that fit a parameter or property, by its name (the rest are generated from the schema). */
const FIXTURES_BY_KEY: Record<string, string[]> = {
  userId: ['user', 'user-email', 'new-user'],
  recipient_id: ['user', 'user-email', 'new-user', 'new-user-email'],
  sender_id: ['user'],
  members: ['user', 'user-email', 'new-user'],
  email: ['user-email', 'login-email'],
  identifier: ['user-email', 'login-email'],
  refresh_token: ['refresh-token'],
  token: ['set-password-token'],
  actor: ['user'],
  target: ['user'],
  channelId: ['channel', 'channel-name', 'group'],
  channel_id: ['channel', 'channel-name', 'group'],
  channels: ['channel', 'group'],
  messageId: ['message', 'other-message'],
  message_id: ['message', 'other-message'],
  reply_to: ['message', 'other-message'],
  before: ['message'],
  after: ['message'],
  fileId: ['file'],
  file_id: ['file'],
  attachments: ['file'],
  avatar_file_id: ['file'],
  id: ['announcement'],
};
/** The password of the `login-email` fixture (a user made for the auth routes to accept). */
const LOGIN_PASSWORD = 'Correct-Horse-Battery-9182';
/** Plain values that fit a parameter or property by its name. */
const LITERALS_BY_KEY: Record<string, string[]> = {
  q: ['fuzz', 'fixture', 'fuzz fixture'],
  department: ['Engineering'],
  reaction: ['👍', '🎉'],
  reaction_type: ['👍', '🎉'],
  old_reaction_type: ['👍'],
  replace: ['👍'],
  key: ['ip:203.0.113.9', 'user:nobody'],
};
/** Generated values that fit a property by its name (an email that may be new, a strong password). */
const GENERATED_BY_KEY: Record<string, fc.Arbitrary<unknown>> = {
  email: fc.stringMatching(/^[a-z][a-z0-9]{0,15}$/).map((local) => `${local}@fuzz.example.com`),
  password: fc.constantFrom(LOGIN_PASSWORD, 'Violet-Harbour-Lantern-8142'),
  new_password: fc.constantFrom(LOGIN_PASSWORD),
  name: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
};

function fillPlaceholders(text: string, fixtures: Fixtures, frameId: string, encode: boolean): string {
  return text.replace(PLACEHOLDER, (match, name: string) => {
    const value = name === 'id' ? frameId : fixtures[name];
    if (value === undefined) return match;
    return encode ? encodeURIComponent(value) : value;
  });
}

function bodyText(body: Body): string {
  return 'text' in body ? body.text : Buffer.from(body.base64, 'base64').toString('latin1');
}

function fillBody(body: Body, fixtures: Fixtures, frameId: string): string | Buffer {
  if ('text' in body) return fillPlaceholders(body.text, fixtures, frameId, false);
  const bytes = Buffer.from(body.base64, 'base64').toString('latin1');
  return Buffer.from(fillPlaceholders(bytes, fixtures, frameId, false), 'latin1');
}

// ---- generators: JSON Schema (OpenAPI 3.0 / zod's JSON Schema) to fast-check arbitraries ----

interface Schema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  nullable?: boolean;
  $ref?: string;
}

type Arb = fc.Arbitrary<unknown>;
let components: Record<string, Schema> = {};

function resolve(schema: Schema | undefined): Schema {
  let current = schema ?? {};
  for (let i = 0; current.$ref && i < 10; i++) current = components[current.$ref.split('/').pop()!] ?? {};
  if (current.allOf?.length) return Object.assign({}, ...current.allOf.map(resolve)) as Schema;
  return current;
}

/** Deeply nested arrays as a value (n levels). */
function nested(n: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < n; i++) value = [value];
  return value;
}

const HUGE = 'x'.repeat(100_000);
const EDGE_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0000'.repeat(64),
  '0',
  '-1',
  '1.5',
  '1e309',
  '-0',
  'NaN',
  'Infinity',
  'null',
  'true',
  'undefined',
  '[]',
  '{}',
  '{"$gt":""}',
  '$where',
  '$gt',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  '../../../../etc/passwd',
  '..',
  '.',
  '<script>alert(1)</script>',
  "' OR '1'='1' --",
  '%00',
  '%',
  '\u202egnp.exe',
  '\uFEFF',
  '\r\n',
  '\ud83d\ude00',
  '\ud800',
  'Ω≈ç√∫˜µ≤≥÷',
  '田中さんにあげて下さい',
  'ﷺ',
  'Z̴̡̪̫̖̥̔̿̃̈̏̎͠͝á̸̪̠̖̻̬̖̪̞͙͇̮̠͎̆͋́̐͌̒͆̓l̶͉̭̳̤̬̮̩͎̟̯̜͇̥̠̘͑͐̌͂̄́̀̂̌̈͛̊̄̚͜ģ̸̬̼̞̙͇͕͎̌̾̒̐̿̎̆̿̌̃̏̌́̾̈͘͜o̶̢̭͕͔̩͐ ̴̡̡̜̥̗͔̘̦͉̣̲͚͙̐̈́ẗ̵́̀',
  'x'.repeat(255),
  'x'.repeat(5_000),
  'ffffffffffffffffffffffff',
  '000000000000000000000000',
  '000000000000000000000000-1',
  'ffffffffffffffffffffffff-9999999999999999',
  '9007199254740993',
  'general',
  'GENERAL',
  'ip:',
  'user:',
  ADMIN_EMAIL.toUpperCase(),
];
const EDGE_NUMBERS = [
  0,
  -0,
  -1,
  1,
  0.5,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
  Number.MIN_VALUE,
];
/** A value a client should never send, in any position. */
const edgeValue: Arb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom<unknown>(...EDGE_STRINGS) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(...EDGE_NUMBERS) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      true,
      false,
      null,
      [],
      {},
      [[[]]],
      [null],
      { $gt: '' },
      { $ne: null },
      { $where: 'sleep(1000)' },
      { $regex: '.*' },
      { __proto__: { admin: true } },
      JSON.parse('{"__proto__":{"admin":true}}'),
      { constructor: { prototype: { admin: true } } },
      ['a', 'b'],
      [1, '1', null, {}],
      nested(64),
      { a: { b: { c: { d: { e: { f: 'deep' } } } } } },
      HUGE,
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
);
const anyJson: Arb = fc.jsonValue({ maxDepth: 3 });
/** Keys a client should never send: operators, prototype keys, dotted and empty names. */
const extraKey = fc.oneof(
  fc.constantFrom(
    '$where',
    '$gt',
    '$set',
    '$ne',
    '__proto__',
    'constructor',
    'prototype',
    '',
    'a.b',
    '\u0000',
    'sender_id',
    'sender_name',
    '_id',
    'roles',
    'admin',
    'type',
  ),
  fc.string({ maxLength: 12 }),
);

/** Values that fit a parameter or property by its name: fixtures, literals and generated forms. */
function literalsFor(key: string | undefined): Arb | undefined {
  if (!key) return undefined;
  const options: Arb[] = [];
  const constants = [...(FIXTURES_BY_KEY[key] ?? []).map(placeholder), ...(LITERALS_BY_KEY[key] ?? [])];
  if (constants.length) options.push(fc.constantFrom(...constants));
  const generated = GENERATED_BY_KEY[key];
  if (generated) options.push(generated);
  return options.length ? fc.oneof(...options) : undefined;
}

function typeOf(schema: Schema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null');
  if (schema.type) return schema.type;
  if (schema.properties || schema.additionalProperties) return 'object';
  if (schema.items) return 'array';
  return undefined;
}

function patternArb(pattern: string): Arb | undefined {
  for (const flags of ['u', '']) {
    try {
      return fc.stringMatching(new RegExp(pattern, flags));
    } catch {
      // unsupported by fast-check: try the next form, else plain strings
    }
  }
  return undefined;
}

/**
 * `valid`: values the schema accepts (the generators of a valid request). `chaotic`: each value may also
 * be a violation, an edge value, a wrong type or anything (a request wrong in many places at once).
 */
type Mode = 'valid' | 'chaotic';

function stringFor(schema: Schema): Arb {
  const options: Arb[] = [];
  if (schema.format === 'date-time') {
    options.push(
      fc
        .date({ min: new Date(0), max: new Date(4_102_444_800_000), noInvalidDate: true })
        .map((d) => d.toISOString()),
    );
  } else if (schema.pattern) {
    const matching = patternArb(schema.pattern);
    if (matching) options.push(matching);
  }
  if (options.length === 0) {
    const max = Math.min(schema.maxLength ?? 40, 40);
    options.push(fc.string({ minLength: Math.min(schema.minLength ?? 0, max), maxLength: max }));
  }
  // Sometimes the longest accepted value.
  if (schema.maxLength !== undefined && schema.maxLength > 40 && !schema.pattern && !schema.format)
    return fc.oneof(
      { weight: 8, arbitrary: fc.oneof(...options) },
      { weight: 1, arbitrary: fc.constant('x'.repeat(schema.maxLength)) },
    );
  return fc.oneof(...options);
}

function numberFor(schema: Schema, integer: boolean): Arb {
  const min = Math.max(schema.minimum ?? -1e9, Number.MIN_SAFE_INTEGER);
  const max = Math.min(schema.maximum ?? 1e9, Number.MAX_SAFE_INTEGER);
  const inRange = integer ? fc.integer({ min, max }) : fc.double({ min, max, noNaN: true });
  // Small values too: counts, seqs and limits that name something that exists.
  const small = integer ? fc.integer({ min, max: Math.min(max, Math.max(min, 0) + 50) }) : inRange;
  return fc.oneof(
    { weight: 2, arbitrary: inRange },
    { weight: 2, arbitrary: small },
    { weight: 1, arbitrary: fc.constantFrom(min, max) },
  );
}

/** A value of the schema's own shape (fixtures where the key names one). */
function shaped(raw: Schema | undefined, key: string | undefined, depth: number, mode: Mode): Arb {
  const schema = resolve(raw);
  const options: { weight: number; arbitrary: Arb }[] = [];
  const alternatives = schema.anyOf ?? schema.oneOf;
  const type = typeOf(schema);
  if (alternatives?.length) {
    options.push({ weight: 4, arbitrary: fc.oneof(...alternatives.map((s) => shaped(s, key, depth, mode))) });
  } else if (schema.const !== undefined) {
    options.push({ weight: 4, arbitrary: fc.constant(schema.const) });
  } else if (schema.enum?.length) {
    options.push({ weight: 4, arbitrary: fc.constantFrom(...schema.enum) });
  } else if (type === 'string') {
    options.push({ weight: 4, arbitrary: stringFor(schema) });
  } else if (type === 'integer' || type === 'number') {
    options.push({ weight: 4, arbitrary: numberFor(schema, type === 'integer') });
  } else if (type === 'boolean') {
    options.push({ weight: 4, arbitrary: fc.boolean() });
  } else if (type === 'null') {
    options.push({ weight: 4, arbitrary: fc.constant(null) });
  } else if (type === 'array') {
    options.push({ weight: 4, arbitrary: arrayFor(schema, key, depth, mode) });
  } else if (type === 'object') {
    options.push({ weight: 4, arbitrary: objectFor(schema, key, depth, mode) });
  } else {
    options.push({ weight: 4, arbitrary: anyJson });
  }
  if (schema.nullable || (Array.isArray(schema.type) && schema.type.includes('null')))
    options.push({ weight: 1, arbitrary: fc.constant(null) });
  const literals =
    (type === 'string' && schema.format !== 'date-time') || type === undefined ? literalsFor(key) : undefined;
  if (literals) options.push({ weight: 6, arbitrary: literals });
  return fc.oneof(...options);
}

/** A value of another JSON type than the schema's (numbers as strings for numeric fields). */
function wrongType(raw: Schema | undefined): Arb {
  const type = typeOf(resolve(raw));
  const options: Arb[] = [];
  if (type !== 'string') options.push(fc.string({ maxLength: 20 }));
  if (type === 'integer' || type === 'number')
    options.push(fc.integer().map(String), fc.double({ noNaN: true }).map(String));
  if (type !== 'integer' && type !== 'number') options.push(fc.integer(), fc.double());
  if (type !== 'boolean') options.push(fc.boolean(), fc.constantFrom('true', 'false'));
  options.push(fc.constant(null));
  if (type !== 'array') options.push(fc.array(anyJson, { maxLength: 3 }));
  if (type !== 'object') options.push(fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 3 }));
  return fc.oneof(...options);
}

/** A value just outside what the schema accepts: past its bounds, off its pattern or enum. */
function violation(raw: Schema | undefined): Arb {
  const schema = resolve(raw);
  const type = typeOf(schema);
  const values: unknown[] = [];
  if (schema.enum?.length) {
    const first = String(schema.enum[0]);
    values.push(first.toUpperCase(), ` ${first}`, `${first}\u0000`, '', 'unknown');
  }
  if (type === 'string') {
    if (schema.maxLength !== undefined) values.push('x'.repeat(schema.maxLength + 1));
    if (schema.minLength) values.push('x'.repeat(schema.minLength - 1));
    if (schema.pattern || schema.format)
      values.push('', 'not-matching', '2024-13-45T99:99:99Z', '0'.repeat(24));
  }
  if (type === 'integer' || type === 'number') {
    if (schema.minimum !== undefined) values.push(schema.minimum - 1);
    if (schema.maximum !== undefined) values.push(schema.maximum + 1);
    values.push(-1, 0.5, 2 ** 53 + 2, -0);
  }
  if (type === 'array') {
    const item = resolve(schema.items);
    const sample = typeOf(item) === 'string' ? 'x' : 0;
    if (schema.maxItems !== undefined && schema.maxItems < 1000)
      values.push(Array.from({ length: schema.maxItems + 1 }, () => sample));
    if (schema.minItems) values.push([]);
    values.push([null], [[]], [{}]);
  }
  if (type === 'object') values.push({}, { '': null });
  return values.length ? fc.constantFrom(...values) : edgeValue;
}

/** A wrong value for a schema: a violation, an edge value, a wrong type, or anything. */
function badValue(schema: Schema | undefined, key: string | undefined, depth: number): Arb {
  return fc.oneof(
    { weight: 3, arbitrary: violation(schema) },
    { weight: 2, arbitrary: edgeValue },
    { weight: 2, arbitrary: wrongType(schema) },
    { weight: 1, arbitrary: anyJson },
    ...(depth < 4 ? [{ weight: 1, arbitrary: shaped(schema, key, depth, 'chaotic') }] : []),
  );
}

/** In chaotic mode a value is mostly shaped, else wrong. */
function valueFor(schema: Schema | undefined, key: string | undefined, depth: number, mode: Mode): Arb {
  if (mode === 'valid' || depth > 4) return shaped(schema, key, depth, mode);
  return fc.oneof(
    { weight: 5, arbitrary: shaped(schema, key, depth, mode) },
    { weight: 3, arbitrary: badValue(schema, key, depth + 1) },
  );
}

function arrayFor(schema: Schema, key: string | undefined, depth: number, mode: Mode): Arb {
  return fc.array(valueFor(schema.items, key, depth + 1, mode), {
    minLength: Math.min(schema.minItems ?? 0, 5),
    maxLength: Math.min(schema.maxItems ?? 5, 5),
  });
}

const ABSENT = Symbol('absent');

function objectFor(schema: Schema, key: string | undefined, depth: number, mode: Mode): Arb {
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {}).map(([name, sub]) => {
    const present = valueFor(sub, name, depth + 1, mode).map((v) => [name, v] as [string, unknown]);
    if (mode === 'valid' && required.has(name)) return present;
    // A valid request leaves most optional fields out (as clients do); a chaotic one has any of them.
    return fc.oneof(
      { weight: required.has(name) ? 9 : 1, arbitrary: present },
      { weight: required.has(name) ? 1 : mode === 'valid' ? 2 : 1, arbitrary: fc.constant(ABSENT) },
    );
  });
  const extras =
    mode === 'valid'
      ? fc.constant([] as [string, unknown][])
      : fc.oneof(
          { weight: 4, arbitrary: fc.constant([] as [string, unknown][]) },
          {
            weight: 1,
            arbitrary: fc.array(fc.tuple(extraKey, fc.oneof(anyJson, edgeValue)), { maxLength: 3 }),
          },
        );
  // A dictionary (zod's record): keys from the key's fixtures or its propertyNames, values of its schema.
  const additional =
    typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  let entries: fc.Arbitrary<[string, unknown][]> = fc.constant([]);
  if (additional && !schema.properties) {
    const keys = fc.oneof(
      literalsFor(key) ?? fc.string({ maxLength: 10 }),
      stringFor(resolve(schema.propertyNames)),
    ) as fc.Arbitrary<string>;
    const some = fc.array(fc.tuple(keys, valueFor(additional, undefined, depth + 1, mode)), { maxLength: 4 });
    entries =
      mode === 'valid'
        ? some
        : fc.oneof(
            { weight: 5, arbitrary: some },
            // Past any sensible count of keys (resume names at most 500 channels).
            {
              weight: 1,
              arbitrary: fc.constant(
                Array.from({ length: 501 }, (_, i) => [`c${i}`, 0] as [string, unknown]),
              ),
            },
          );
  }
  return fc
    .tuple(fc.tuple(...fields), extras, entries)
    .map(([picked, extra, dictionary]) =>
      Object.fromEntries([
        ...(picked.filter((f) => f !== ABSENT) as [string, unknown][]),
        ...extra,
        ...dictionary,
      ]),
    );
}

/** A valid object with exactly one thing wrong: a field's value, a required field left out, or an extra key. */
function oneMutation(schema: Schema, key: string | undefined, depth: number): Arb {
  const properties = Object.entries(schema.properties ?? {});
  type Change = (entries: [string, unknown][]) => [string, unknown][];
  const changes: fc.Arbitrary<Change>[] = [
    fc
      .tuple(extraKey, fc.oneof(anyJson, edgeValue))
      .map(([name, value]): Change => (entries) => [...entries, [name, value]]),
  ];
  if (properties.length)
    changes.push(
      fc.oneof(
        ...properties.map(([name, sub]) =>
          badValue(sub, name, depth + 1).map((value): Change => (entries) => [
            ...entries.filter(([k]) => k !== name),
            [name, value],
          ]),
        ),
      ),
    );
  if (schema.required?.length)
    changes.push(
      fc.constantFrom(...schema.required).map(
        (name): Change =>
          (entries) =>
            entries.filter(([k]) => k !== name),
      ),
    );
  return fc
    .tuple(objectFor(schema, key, depth, 'valid'), fc.oneof(...changes))
    .map(([valid, change]) => Object.fromEntries(change(Object.entries(valid as object))));
}

// ---- raw bodies ----

const JSON_TYPE = 'application/json';
const GARBAGE_CONSTANTS = [
  '',
  ' ',
  '{',
  '}',
  '[',
  'null',
  'true',
  '0',
  '-1',
  '"x"',
  '[]',
  '{"a":}',
  '{,}',
  '{"a":1,}',
  '\uFEFF{}',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  'NaN',
  '{"a":1,"a":2}',
  '\u0000',
  '{"content":"\u0000"}',
  "{'content':'x'}",
  '{"content":"\\ud800"}',
  '{"content":"\\u0000"}',
  '1'.repeat(400),
  '{"a":' + '9'.repeat(400) + '}',
];
const garbageBody: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ text })) },
  { weight: 3, arbitrary: fc.constantFrom(...GARBAGE_CONSTANTS).map((text) => ({ text })) },
  {
    weight: 2,
    arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => ({ base64: Buffer.from(b).toString('base64') })),
  },
  // Deep nesting: arrays and objects, up to far past any parser's recursion.
  {
    weight: 2,
    arbitrary: fc.integer({ min: 1, max: 200_000 }).map((n) => ({ text: '['.repeat(n) + ']'.repeat(n) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 60_000 })
      .map((n) => ({ text: '{"a":'.repeat(n) + '1' + '}'.repeat(n) })),
  },
  // Past the body limit (1 MiB).
  { weight: 1, arbitrary: fc.constant({ text: JSON.stringify({ content: 'x'.repeat(1_200_000) }) }) },
);
const OTHER_CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/xml',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'multipart/form-data',
  'application/vnd.api+json',
  'text/csv',
  '',
];

/** An upload as a client sends it: one file part (a name the server allows), maybe a channel_id first. */
const multipartValid: fc.Arbitrary<Body> = fc
  .record({
    channel: fc.option(fc.constantFrom(placeholder('channel'), placeholder('group'), 'general'), {
      nil: undefined,
    }),
    filename: fc.oneof(
      fc.constantFrom('notes.txt', 'report.csv', 'data.json', 'ünïcödé.txt', 'a b.txt'),
      fc.stringMatching(/^[a-z0-9][a-z0-9 _-]{0,20}\.txt$/),
    ),
    content: fc.string({ minLength: 1, maxLength: 400 }),
  })
  .map(({ channel, filename, content }) => ({
    base64: multipartBody(
      [
        ...(channel ? [{ name: 'channel_id', body: channel }] : []),
        { name: 'file', filename, contentType: 'text/plain', body: content },
      ],
      'fuzzboundary',
    ).toString('base64'),
  }));

const multipartAny: fc.Arbitrary<Body> = fc
  .tuple(
    fc.array(
      fc.record({
        name: fc.oneof(fc.constantFrom('file', 'channel_id', 'file'), fc.string({ maxLength: 10 })),
        filename: fc.option(
          fc.oneof(
            fc.constantFrom(
              'a.txt',
              'notes.TXT',
              'photo.png',
              'a.exe',
              'a.svg',
              'a.html',
              '../../etc/passwd.txt',
              '',
              '.txt',
              'a\u0000.txt',
              '\u202etxt.exe',
              'x'.repeat(300) + '.txt',
            ),
            fc.string({ unit: 'binary', maxLength: 20 }),
          ),
          { nil: undefined },
        ),
        contentType: fc.option(fc.constantFrom('text/plain', 'image/png', 'application/json', 'x/y'), {
          nil: undefined,
        }),
        body: fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
          fc.constantFrom(placeholder('channel'), 'hello', '', '\u0000', '%PDF-1.4', '\x89PNG\r\n\x1a\n'),
        ),
      }),
      { maxLength: 3 },
    ),
    fc.nat({ max: 5 }),
  )
  .map(([parts, cut]) => {
    let bytes = multipartBody(parts, 'fuzzboundary');
    // Sometimes the body ends early (a truncated upload).
    if (cut === 0) bytes = bytes.subarray(0, Math.floor(bytes.length / 2));
    return { base64: bytes.toString('base64') };
  });

const csvAny: fc.Arbitrary<Body> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }).map((text) => ({ text })),
  fc
    .array(
      fc.array(
        fc.oneof(
          fc.constantFrom(placeholder('user-email'), 'Engineering', 'admin', '"', '', '=1+1'),
          fc.string(),
        ),
        {
          maxLength: 8,
        },
      ),
      { maxLength: 6 },
    )
    .map((rows) => ({
      text: ['email,name,department,roles', ...rows.map((row) => row.join(','))].join('\n'),
    })),
);

// ---- the REST cases ----

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}

interface Operation {
  method: string;
  template: string;
  key: string;
  parameters: Parameter[];
  bodies: Record<string, Schema>;
}

function safeEncode(value: string): string {
  return encodeURIComponent(
    value.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  );
}

/** A query or path value as text (arrays become repeated keys in queries). */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** Path segments that name a real thing by a parameter's name (log files). */
const PATH_LITERALS: Record<string, Arb> = {
  name: fc.constantFrom('main.json', 'main.log', 'security.log', 'audit.log'),
};

/** Segments already percent-encoded: malformed escapes and encoded separators. */
const RAW_SEGMENTS = ['%', '%zz', '%00', '%C0%AF', '%2F', '%2e%2e', '%FF%FE', '%E2%80%AE', '%ud800', '%%'];

function pathValue(parameter: Parameter): fc.Arbitrary<string> {
  const encoded = (arb: Arb) => arb.map((v) => safeEncode(asText(v)));
  return fc.oneof(
    // Mostly the fixtures the name fits (a path segment names a thing: the route's logic runs on real ones).
    ...[literalsFor(parameter.name), PATH_LITERALS[parameter.name]]
      .filter((a) => a !== undefined)
      .map((a) => ({ weight: 8, arbitrary: encoded(a) })),
    { weight: 3, arbitrary: encoded(shaped(parameter.schema, parameter.name, 0, 'valid')) },
    { weight: 2, arbitrary: encoded(badValue(parameter.schema, parameter.name, 0)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map(safeEncode) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
  );
}

function queryPairs(parameter: Parameter): fc.Arbitrary<[string, string][]> {
  const one = (v: unknown): [string, string][] =>
    Array.isArray(v) ? v.map((item) => [parameter.name, asText(item)]) : [[parameter.name, asText(v)]];
  return fc.oneof(
    { weight: parameter.required ? 1 : 5, arbitrary: fc.constant<[string, string][]>([]) },
    { weight: 4, arbitrary: shaped(parameter.schema, parameter.name, 0, 'valid').map(one) },
    { weight: 2, arbitrary: badValue(parameter.schema, parameter.name, 0).map(one) },
  );
}

const RAW_QUERIES = [
  '%',
  '%zz=1',
  '&&&',
  '=',
  '=x',
  'a[b]=1',
  'a[]=1&a[]=2',
  '__proto__[x]=1',
  'constructor[prototype][x]=1',
  '%00=%00',
  'limit=1&limit=2',
];

function httpCases(operation: Operation): fc.Arbitrary<HttpCase> {
  const pathParams = operation.parameters.filter((p) => p.in === 'path');
  const queryParams = operation.parameters.filter((p) => p.in === 'query');
  const pathArb = fc
    .tuple(...pathParams.map(pathValue))
    .map((values) =>
      pathParams.reduce((url, p, i) => url.replace(`{${p.name}}`, values[i]!), operation.template),
    );
  const queryArb = fc
    .tuple(
      fc.tuple(...queryParams.map(queryPairs)),
      fc.oneof(
        { weight: 5, arbitrary: fc.constant([] as [string, string][]) },
        {
          weight: 1,
          arbitrary: fc.array(fc.tuple(extraKey, fc.string({ maxLength: 10 })), { maxLength: 2 }),
        },
      ),
      fc.oneof(
        { weight: 8, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom(...RAW_QUERIES) },
      ),
    )
    .map(([declared, extra, raw]) => {
      const pairs = [...declared.flat(), ...extra].map(([k, v]) => `${safeEncode(k)}=${safeEncode(v)}`);
      if (raw) pairs.push(raw);
      return pairs.length ? `?${pairs.join('&')}` : '';
    });
  const bodyArb = bodiesFor(operation);
  return fc
    .record({ role: fc.constantFrom<Role>('admin', 'member'), path: pathArb, query: queryArb, body: bodyArb })
    .map(({ role, path: url, query, body }) => ({
      role,
      method: operation.method,
      url: url + query,
      ...body,
    }));
}

type BodyPart = { body?: Body; contentType?: string; variant: string };

function bodiesFor(operation: Operation): fc.Arbitrary<BodyPart> {
  // fetch sends no body with GET or HEAD.
  if (operation.method === 'GET' || operation.method === 'HEAD') return fc.constant({ variant: 'none' });
  const json = operation.bodies[JSON_TYPE];
  const garbage = {
    weight: 2,
    arbitrary: garbageBody.map((body) => ({ body, contentType: JSON_TYPE, variant: 'garbage' })),
  };
  const arbitrary = {
    weight: 2,
    arbitrary: anyJson.map((v) => ({
      body: { text: JSON.stringify(v) },
      contentType: JSON_TYPE,
      variant: 'arbitrary',
    })),
  };
  const options: { weight: number; arbitrary: fc.Arbitrary<BodyPart> }[] = [garbage, arbitrary];
  if (json) {
    const schema = resolve(json);
    const asJson = (variant: string) => (v: unknown) => ({
      body: { text: JSON.stringify(v) },
      contentType: JSON_TYPE,
      variant,
    });
    options.push(
      { weight: 4, arbitrary: shaped(schema, undefined, 0, 'valid').map(asJson('valid')) },
      ...(typeOf(schema) === 'object'
        ? [{ weight: 5, arbitrary: oneMutation(schema, undefined, 0).map(asJson('one-mutation')) }]
        : []),
      { weight: 2, arbitrary: shaped(schema, undefined, 0, 'chaotic').map(asJson('chaotic')) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(shaped(schema, undefined, 0, 'valid'), fc.constantFrom(...OTHER_CONTENT_TYPES))
          .map(([v, contentType]) => ({
            body: { text: JSON.stringify(v) },
            contentType: contentType || undefined,
            variant: 'content-type',
          })),
      },
    );
  } else {
    options.push({ weight: 4, arbitrary: fc.constant({ variant: 'none' }) });
  }
  if (operation.bodies['multipart/form-data'])
    options.push({
      weight: 8,
      arbitrary: fc.oneof(multipartValid, multipartAny).map((body) => ({
        body,
        contentType: 'multipart/form-data; boundary=fuzzboundary',
        variant: 'multipart',
      })),
    });
  if (operation.bodies['text/csv'])
    options.push({
      weight: 3,
      arbitrary: csvAny.map((body) => ({ body, contentType: 'text/csv', variant: 'csv' })),
    });
  return fc.oneof(...options);
}

// ---- the frame cases ----

/** Each frame type's JSON Schema (from the protocol's zod schema), without `type` and `id`. */
function frameSchema(type: string): Schema {
  const option = clientFrame.options.find((o) => [...o.shape.type.values].map(String).includes(type))!;
  const schema = z.toJSONSchema(option, { io: 'input', unrepresentable: 'any' }) as Schema;
  const { type: _type, id: _id, ...properties } = schema.properties ?? {};
  return {
    ...schema,
    properties,
    required: (schema.required ?? []).filter((k) => k !== 'type' && k !== 'id'),
  };
}

const NESTING_MARK = '"~~fx-nesting~~"';

function frameCases(type: string): fc.Arbitrary<FrameCase> {
  const schema = frameSchema(type);
  const fieldNames = Object.keys(schema.properties ?? {});
  const fieldKey = (fieldNames.length ? fc.oneof(fc.constantFrom(...fieldNames), extraKey) : extraKey).filter(
    (k) => k !== 'type' && k !== 'id',
  );
  const text = (fields: Record<string, unknown>) => JSON.stringify({ type, id: ID_PLACEHOLDER, ...fields });
  const withoutReserved = (fields: Record<string, unknown>) => {
    const copy = { ...fields };
    delete copy.type;
    delete copy.id;
    return copy;
  };
  const variants: { weight: number; arbitrary: fc.Arbitrary<{ text: string; variant: string }> }[] = [
    {
      weight: 2,
      arbitrary: objectFor(schema, undefined, 0, 'valid').map((fields) => ({
        text: text(withoutReserved(fields as Record<string, unknown>)),
        variant: 'valid',
      })),
    },
    {
      weight: 5,
      arbitrary: oneMutation(schema, undefined, 0).map((fields) => ({
        text: text(withoutReserved(fields as Record<string, unknown>)),
        variant: 'one-mutation',
      })),
    },
    {
      weight: 2,
      arbitrary: objectFor(schema, undefined, 0, 'chaotic').map((fields) => ({
        text: text(withoutReserved(fields as Record<string, unknown>)),
        variant: 'chaotic',
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.tuple(fieldKey, fc.oneof(anyJson, edgeValue)), { maxLength: 6 })
        .map((pairs) => ({ text: text(Object.fromEntries(pairs)), variant: 'arbitrary' })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fieldKey, fc.constantFrom(1_000, 10_000, 60_000, 70_000))
        .map(([key, n]) => ({ text: text({ [key]: 'x'.repeat(n) }), variant: 'huge' })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fieldKey, fc.integer({ min: 1, max: 30_000 })).map(([key, n]) => ({
        text: text({ [key]: '~~fx-nesting~~' }).replace(NESTING_MARK, '['.repeat(n) + ']'.repeat(n)),
        variant: 'nesting',
      })),
    },
  ];
  return fc
    .record({ role: fc.constantFrom<Role>('admin', 'member'), body: fc.oneof(...variants) })
    .map(({ role, body }) => ({ role, frame: { text: body.text }, withId: true, variant: body.variant }));
}

const malformedFrames: fc.Arbitrary<FrameCase> = fc
  .record({
    role: fc.constantFrom<Role>('admin', 'member'),
    body: fc.oneof(
      {
        weight: 2,
        arbitrary: fc.string({ unit: 'binary', maxLength: 100 }).map((text) => ({ text, variant: 'text' })),
      },
      {
        weight: 2,
        arbitrary: fc
          .constantFrom(
            '',
            ' ',
            'null',
            '[]',
            '1',
            '"ping"',
            '{',
            '{}',
            '[{"type":"ping"}]',
            `{"type":1,"id":"${ID_PLACEHOLDER}"}`,
            `{"type":null,"id":"${ID_PLACEHOLDER}"}`,
            `{"id":"${ID_PLACEHOLDER}"}`,
            `{"type":"__proto__","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"constructor","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"toString","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"hasOwnProperty","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"hello","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"ack","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"PING","id":"${ID_PLACEHOLDER}"}`,
            `{"type":"ping ","id":"${ID_PLACEHOLDER}"}`,
            `{"__proto__":{"type":"ping"},"id":"${ID_PLACEHOLDER}"}`,
            `{"type":"ping","id":"${ID_PLACEHOLDER}","__proto__":{"x":1}}`,
          )
          .map((text) => ({ text, variant: 'constant' })),
      },
      {
        weight: 2,
        arbitrary: fc
          .string({ maxLength: 60 })
          .filter((t) => !FRAME_TYPES.includes(t))
          .map((t) => ({ text: JSON.stringify({ type: t, id: ID_PLACEHOLDER }), variant: 'unknown-type' })),
      },
      {
        weight: 1,
        arbitrary: anyJson
          .filter((t) => typeof t !== 'string')
          .map((t) => ({
            text: JSON.stringify({ type: t, id: ID_PLACEHOLDER }),
            variant: 'type-not-string',
          })),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            fc.constantFrom(...FRAME_TYPES),
            fc.oneof(
              fc.constantFrom<unknown>('', 'x'.repeat(65), null, {}, [], true, 0, -1),
              fc.integer(),
              fc.double(),
            ),
          )
          .map(([type, id]) => ({ text: JSON.stringify({ type, id }), variant: 'bad-id' })),
      },
      {
        weight: 1,
        arbitrary: fc
          .uint8Array({ maxLength: 200 })
          .map((b) => ({ base64: Buffer.from(b).toString('base64'), variant: 'binary' })),
      },
    ),
  })
  .map(({ role, body }) => {
    const frame: Body = 'text' in body ? { text: body.text } : { base64: body.base64 };
    return {
      role,
      frame,
      withId: 'text' in body && body.text.includes(ID_PLACEHOLDER),
      variant: `malformed-${body.variant}`,
    };
  });

// ---- the run ----

class Failure extends Error {
  constructor(
    readonly kind: string,
    readonly evidence: Record<string, unknown>,
  ) {
    super(`${kind}\n${JSON.stringify(evidence, null, 2).slice(0, 6000)}`);
  }
}

/** An error code's HTTP status (codes of frames carry no status of their own). */
const CODE_STATUS = new Map<string, number>([
  ...Object.entries(STATUS_FALLBACK_CODES).map(
    ([status, code]) => [code, Number(status)] as [string, number],
  ),
  ...Object.entries(Errors).map(([code, Make]) => [code, new Make().statusCode ?? 500] as [string, number]),
]);

function seedFor(target: string): number {
  let hash = 2166136261;
  for (const char of target) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  return (BASE_SEED ^ hash) >>> 1;
}

function readRegressions(): Regression[] {
  if (!fs.existsSync(REGRESSIONS_FILE)) return [];
  return (JSON.parse(fs.readFileSync(REGRESSIONS_FILE, 'utf8')) as { cases: Regression[] }).cases;
}

function keepRegression(entry: Regression): boolean {
  const cases = readRegressions();
  if (
    cases.some(
      (c) =>
        c.target === entry.target &&
        c.failure === entry.failure &&
        (c.server ?? 'fuzz') === (entry.server ?? 'fuzz'),
    )
  )
    return false;
  cases.push(entry);
  fs.writeFileSync(
    REGRESSIONS_FILE,
    `${JSON.stringify(
      {
        description:
          'Counterexamples kept by test/reliability/fuzz.test.ts: each is replayed first on every run. ' +
          'Placeholders ~~fx-name~~ are filled with fresh fixtures (~~fx-id~~: the frame id). ' +
          'seed/path repeat the original property run (FUZZ_SEED and the generators of that time).',
        cases,
      },
      null,
      2,
    )}\n`,
  );
  return true;
}

describe('fuzzing: every REST route and every frame type', () => {
  const deployment = (name: Deployment['name'], env: Record<string, string>): Deployment => {
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `switchboard-${name}-logs-`));
    const base = { NOT_FOUND_PER_MINUTE: '1000000', FILE_UPLOADS_PER_HOUR: '1000000', LOG_DIR: logDir };
    return { name, databaseName: uniqueDatabaseName(), logDir, env: { ...base, ...env } };
  };
  /** Where everything runs: detection off, so the fuzzer's attack-looking strings never get it banned. */
  const PRIMARY = deployment('fuzz', { DETECTION_ENABLED: 'false' });
  /**
   * For the routes detection guards (404 DETECTION_DISABLED on the primary): detection on, scoring and
   * recording every request, its alert and ban scores out of the fuzzer's reach.
   */
  const DETECTION = deployment('fuzz-detection', {
    DETECTION_ENABLED: 'true',
    SECURITY_ALERT_SCORE: '99999',
    SECURITY_BLOCK_SCORE: '100000',
  });
  let current = PRIMARY;
  let server: ServerProcess;
  let detectionServer: ServerProcess;
  /** Operations that answered DETECTION_DISABLED on the primary. */
  const detectionGuarded = new Set<string>();
  let client: MongoClient;
  let db: Db;
  const people = {} as Record<Role, Person & { password: string }>;
  const signedInAt: Record<Role, number> = { admin: 0, member: 0 };
  const sockets = {} as Record<Role, TestSocket>;
  let fixtures: Fixtures = {};
  /** A user the auth routes can sign in (its password is LOGIN_PASSWORD). */
  const loginEmail = uniqueEmail('fuzz-login');
  /** An accepted write may have changed or removed a fixture: the next batch makes new ones. */
  let dirty = true;
  let operations: Operation[] = [];
  const started = Date.now();
  let frameCounter = 0;

  const figures = {
    http_operations: 0,
    http_requests: 0,
    http_2xx: 0,
    http_3xx: 0,
    http_4xx: 0,
    http_5xx: 0,
    rejected_writes_checked: 0,
    frame_types: 0,
    frames_sent: 0,
    frame_acks: 0,
    frame_errors: 0,
    oversized_frames_closed_1009: 0,
    crashes: 0,
    cases_run_incl_shrinking: 0,
    detection_guarded_operations: 0,
    regressions_replayed: 0,
    regressions_kept: 0,
  };
  const undocumentedCodes = new Set<string>();
  /** Targets whose cases were accepted at least once (2xx, or an ack): the fuzz reached their logic. */
  const accepted = new Set<string>();
  const durations = new Map<string, number>();
  const interrupted: string[] = [];
  const failures: string[] = [];
  /** Each failure's target and kind (its first line), for the report's checks. */
  const failed: { target: string; kind: string }[] = [];

  // ---- helpers bound to the running server ----

  async function signIn(role: Role): Promise<void> {
    const { password } = people[role];
    const person = await login(server, people[role].email, password);
    people[role] = { ...person, password };
    signedInAt[role] = Date.now();
  }

  /**
   * Access tokens live 15 minutes (auth.access_token_ttl_s) and a full run lasts longer: like a real
   * client, the fuzzer gets a new one before its token runs out, or a socket reopened late in the run is
   * refused with 4401 (one full run failed so, 17 minutes in).
   */
  async function keepSignedIn(role: Role): Promise<void> {
    if (Date.now() - signedInAt[role] > TOKEN_REFRESH_AFTER_MS) await signIn(role);
  }

  /**
   * What a rejected input must leave as it was: the document counts of the COUNTED collections ($collStats'
   * count: exact and O(1), where FerretDB's countDocuments reads every document, 150 ms for 3,000), and the
   * fixtures' own documents that only requests change (no background writer touches them).
   */
  async function snapshot(): Promise<Snapshot> {
    const [counts, docs] = await Promise.all([
      Promise.all(
        COUNTED.map(async (name) => {
          const [stats] = await db
            .collection(name)
            .aggregate<{ count: number }>([{ $collStats: { count: {} } }])
            .toArray()
            .catch(() => [{ count: 0 }]); // not created yet
          return stats?.count ?? 0;
        }),
      ),
      Promise.all(
        FIXTURE_DOCUMENTS.map(async ([collection, name]) =>
          JSON.stringify(
            await db.collection<{ _id: string }>(collection).findOne({ _id: fixtures[name] ?? '' }),
          ),
        ),
      ),
    ]);
    return { counts, docs };
  }

  /** After an accepted write: waits until what it set off in the background has landed. */
  async function settle(): Promise<void> {
    let last = await snapshot();
    for (let i = 0; i < 40; i++) {
      await pause(15);
      const now = await snapshot();
      if (Object.keys(differences(last, now)).length === 0) return;
      last = now;
    }
  }

  function differences(before: Snapshot, after: Snapshot): Record<string, string> {
    const changed: Record<string, string> = {};
    COUNTED.forEach((name, i) => {
      if (before.counts[i] !== after.counts[i]) changed[name] = `${before.counts[i]} → ${after.counts[i]}`;
    });
    FIXTURE_DOCUMENTS.forEach(([collection, name], i) => {
      if (before.docs[i] !== after.docs[i])
        changed[`${collection} ${name}`] =
          `${before.docs[i]?.slice(0, 800)} → ${after.docs[i]?.slice(0, 800)}`;
    });
    return changed;
  }

  const alive = () => server.child.exitCode === null && server.child.signalCode === null;

  /** The server's log lines for a request (its JSON log file), for a 5xx's evidence. */
  async function logLinesFor(requestId: string | null): Promise<string[]> {
    if (!requestId) return [];
    await pause(300);
    const lines: string[] = [];
    const { logDir } = current;
    for (const file of fs.readdirSync(logDir).filter((f) => f.startsWith('main.') && f.endsWith('.json'))) {
      for (const line of fs.readFileSync(path.join(logDir, file), 'utf8').split('\n'))
        if (line.includes(requestId)) lines.push(line.slice(0, 4000));
    }
    return lines.slice(-10);
  }

  /** A crash: keeps its output, starts the server again on the same database, signs in again. */
  async function recover(): Promise<string> {
    const output = server.output().slice(-6000);
    figures.crashes += 1;
    server = await startSwitchboard(current.name, { databaseName: current.databaseName, env: current.env });
    await signIn('admin');
    await signIn('member');
    for (const role of ['admin', 'member'] as const) sockets[role] = await connectTo(server, people[role]);
    return output;
  }

  async function makeFixtures(): Promise<void> {
    // A session a case ended without a 401 to show it (e.g. a logout-everywhere of the other role).
    for (const role of ['admin', 'member'] as const)
      if ((await api(server, people[role], 'GET', '/auth/session')).status === 401) await signIn(role);
    const admin = people.admin;
    const member = people.member;
    const email = uniqueEmail('fuzz-target');
    const user = await ok<{ id: string; set_password_token: string }>(
      api(server, admin, 'POST', '/admin/users', { email, name: 'Fuzz Target', department: 'Engineering' }),
      201,
    );
    const session = await ok<{ refresh_token: string }>(
      api(server, undefined, 'POST', '/auth/login', { email: loginEmail, password: LOGIN_PASSWORD }),
    );
    const channelName = unique('fuzz-pub');
    const channel = await ok<{ id: string }>(
      api(server, admin, 'POST', '/channels', { kind: 'public', name: channelName }),
      201,
    );
    await ok(api(server, member, 'POST', `/channels/${channel.id}/join`));
    const group = await ok<{ id: string }>(
      api(server, member, 'POST', '/channels', {
        kind: 'group',
        name: unique('fuzz-grp'),
        members: [user.id],
      }),
      201,
    );
    const message = await ok<{ id: string }>(
      api(server, member, 'POST', '/messages', { channel_id: channel.id, content: 'fuzz fixture' }),
      201,
    );
    const other = await ok<{ id: string }>(
      api(server, admin, 'POST', '/messages', { channel_id: channel.id, content: 'fuzz fixture (admin)' }),
      201,
    );
    const upload = await fetch(`http://127.0.0.1:${server.port}/api/v2/files`, {
      method: 'POST',
      headers: { ...member.headers, 'content-type': 'multipart/form-data; boundary=fixtureboundary' },
      body: new Uint8Array(
        multipartBody([{ name: 'file', filename: 'fixture.txt', body: 'fuzz fixture' }], 'fixtureboundary'),
      ),
    });
    const file = (await upload.json()) as { id: string };
    expect(upload.status, JSON.stringify(file)).toBe(201);
    const announcement = await ok<{ id: string }>(
      api(server, admin, 'POST', '/announcements', { title: 'Fuzz', content: 'fixture' }),
      201,
    );
    dirty = false;
    fixtures = {
      user: user.id,
      'user-email': email,
      'set-password-token': user.set_password_token,
      'login-email': loginEmail,
      'refresh-token': session.refresh_token,
      channel: channel.id,
      'channel-name': channelName,
      group: group.id,
      message: message.id,
      'other-message': other.id,
      file: file.id,
      announcement: announcement.id,
    };
    await settle();
  }

  /** Makes the per-case fixtures a case names (before its snapshot: making them writes). */
  async function perCaseFixtures(texts: string[]): Promise<void> {
    if (!PER_CASE_FIXTURES.some((name) => texts.some((text) => text.includes(placeholder(name))))) return;
    const email = uniqueEmail('fuzz-new');
    const user = await ok<{ id: string }>(
      api(server, people.admin, 'POST', '/admin/users', {
        email,
        name: 'Fuzz New',
        department: 'Engineering',
      }),
      201,
    );
    fixtures['new-user'] = user.id;
    fixtures['new-user-email'] = email;
    await settle();
  }

  // ---- one REST case ----

  async function runHttp(target: string, example: HttpCase): Promise<void> {
    const write = example.method !== 'GET' && example.method !== 'HEAD';
    await keepSignedIn(example.role);
    const token = people[example.role].token;
    await perCaseFixtures([example.url, example.body ? bodyText(example.body) : '']);
    const url = `http://127.0.0.1:${server.port}${fillPlaceholders(example.url, fixtures, '', true)}`;
    const body = example.body ? fillBody(example.body, fixtures, '') : undefined;
    const sent = {
      ...example,
      url,
      body:
        body === undefined
          ? undefined
          : typeof body === 'string'
            ? body.slice(0, 2000)
            : body.toString('base64').slice(0, 2000),
    };
    const before = write ? await snapshot() : undefined;
    let status: number;
    let text: string;
    let requestId: string | null;
    try {
      const response = await fetch(url, {
        method: example.method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(example.contentType !== undefined ? { 'content-type': example.contentType } : {}),
        },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : new Uint8Array(body) } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = response.status;
      requestId = response.headers.get('x-request-id');
      text = await response.text();
    } catch (error) {
      if (!alive()) {
        const output = await recover();
        throw new Failure('crash: the server process died', { request: sent, server_output: output });
      }
      throw new Failure('no answer', { request: sent, error: String(error), alive: alive() });
    }
    figures.http_requests += 1;
    if (current === PRIMARY && text.includes('"code":"DETECTION_DISABLED"')) detectionGuarded.add(target);
    if (status >= 500) figures.http_5xx += 1;
    else if (status >= 400) figures.http_4xx += 1;
    else if (status >= 300) figures.http_3xx += 1;
    else {
      figures.http_2xx += 1;
      accepted.add(target);
    }
    if (status >= 500) {
      throw new Failure(`status ${status}`, {
        request: sent,
        status,
        response: text.slice(0, 2000),
        request_id: requestId,
        server_log: await logLinesFor(requestId),
        server_output: server.output().slice(-3000),
      });
    }
    if (!alive()) {
      const output = await recover();
      throw new Failure('crash: the server process died', { request: sent, status, server_output: output });
    }
    if (write && status >= 400) {
      figures.rejected_writes_checked += 1;
      const changed = differences(before!, await snapshot());
      if (Object.keys(changed).length) {
        throw new Failure(`stored on a rejected request: ${Object.keys(changed).join(', ')}`, {
          request: sent,
          status,
          response: text.slice(0, 2000),
          changed,
        });
      }
    } else if (write) {
      dirty = true;
      await settle();
    }
    // Logging out is fuzzed on the fuzzing session itself: when it worked, or when any other case ended the
    // session (a 401), the role signs in again, so later cases are not all refused.
    if (
      (target === 'POST /api/v2/auth/logout' && status < 300) ||
      (status === 401 && text.includes('INVALID_TOKEN'))
    )
      await signIn(example.role);
  }

  // ---- one frame case ----

  async function socketFor(role: Role): Promise<TestSocket> {
    const socket = sockets[role];
    if (socket.closeCode === undefined) return socket;
    sockets[role] = await connectTo(server, people[role]);
    return sockets[role];
  }

  const STORING_FRAMES = new Set([
    'personal_message',
    'chat_message',
    'channel_message',
    'file_upload',
    'reaction_update',
    'edit_message',
    'delete_message',
    'mark_read',
  ]);

  async function runFrame(type: string, example: FrameCase): Promise<void> {
    await keepSignedIn(example.role);
    const socket = await socketFor(example.role);
    const id = `fz${++frameCounter}`;
    await perCaseFixtures([bodyText(example.frame)]);
    const payload = fillBody(example.frame, fixtures, id);
    const bytes = Buffer.byteLength(payload);
    const shown =
      typeof payload === 'string' ? payload.slice(0, 2000) : payload.toString('base64').slice(0, 2000);
    const sent = { role: example.role, frame: shown, bytes, variant: example.variant };
    const counting = STORING_FRAMES.has(type) || type === 'malformed';
    const before = counting ? await snapshot() : undefined;
    const seen = socket.frames.length;
    figures.frames_sent += 1;
    if (typeof payload === 'string') socket.sendRaw(payload);
    else socket.sendRaw(payload, true);

    if (bytes > MAX_FRAME_BYTES) {
      // Documented: a frame over the size limit closes the socket with 1009.
      const code = await Promise.race([socket.closed, pause(ANSWER_TIMEOUT_MS).then(() => -1)]);
      if (code !== 1009)
        throw new Failure(`oversized frame: close ${code}, expected 1009`, { frame: sent, code });
      figures.oversized_frames_closed_1009 += 1;
      return;
    }

    const expectError = typeof payload !== 'string' || !parseFrame(payload).ok;
    let answer: { type: string; [field: string]: unknown } | undefined;
    try {
      if (example.withId) {
        answer = await socket.waitFor(
          (f) => (f.type === 'ack' || f.type === 'error') && f.ref === id,
          ANSWER_TIMEOUT_MS,
          `the answer to ${id}`,
        );
      }
      // A ping behind it: its pong proves the socket still serves (frames are answered in order).
      const probe = `${id}p`;
      socket.send({ type: 'ping', id: probe });
      await socket.waitFor(
        (f) => f.type === 'ack' && f.ref === probe,
        ANSWER_TIMEOUT_MS,
        `the answer to ${probe}`,
      );
    } catch (error) {
      if (!alive()) {
        const output = await recover();
        throw new Failure('crash: the server process died', { frame: sent, server_output: output });
      }
      if (socket.closeCode !== undefined)
        throw new Failure(`unexpected close ${socket.closeCode}`, {
          frame: sent,
          reason: socket.closeReason,
        });
      throw new Failure('no answer', {
        frame: sent,
        error: String(error),
        frames: socket.frames.slice(seen).slice(0, 5),
      });
    }
    const after = socket.frames.slice(seen);
    if (!example.withId) {
      const error = after.find((f) => f.type === 'error' && f.ref === undefined);
      if (expectError && !error)
        throw new Failure('a bad frame without an id got no error', {
          frame: sent,
          frames: after.slice(0, 5),
        });
      answer = error;
    }
    if (answer?.type === 'ack') {
      figures.frame_acks += 1;
      accepted.add(`frame ${type}`);
    }
    if (answer?.type === 'error') {
      figures.frame_errors += 1;
      const code = String(answer.code);
      const status = CODE_STATUS.get(code);
      if (status === undefined) undocumentedCodes.add(code);
      if (status === undefined ? code === 'INTERNAL_ERROR' : status >= 500)
        throw new Failure(`frame error ${code}`, {
          frame: sent,
          answer,
          server_output: server.output().slice(-3000),
        });
      if (counting) {
        const changed = differences(before!, await snapshot());
        if (Object.keys(changed).length)
          throw new Failure(`stored on a rejected frame: ${Object.keys(changed).join(', ')}`, {
            frame: sent,
            answer,
            changed,
          });
      }
    } else if (counting) {
      dirty = true;
      await settle();
    }
    if (socket.closeCode !== undefined)
      throw new Failure(`unexpected close ${socket.closeCode}`, { frame: sent, reason: socket.closeReason });
  }

  // ---- properties ----

  async function healthCheck(after: string): Promise<void> {
    const response = await fetch(`http://127.0.0.1:${server.port}/api/v2/health`).catch(() => undefined);
    if (!alive() || response?.status !== 200) {
      const output = alive() ? '' : await recover();
      failed.push({ target: after, kind: 'health' });
      failures.push(`${after}: health ${response?.status ?? 'no answer'} after the batch ${output}`);
    }
  }

  /** Runs one property; a failure is recorded (and kept in the regressions file) without stopping the rest. */
  async function fuzz<T extends HttpCase | FrameCase>(
    kind: 'http' | 'frame',
    target: string,
    cases: fc.Arbitrary<T>,
    run: (example: T) => Promise<void>,
  ): Promise<void> {
    const began = Date.now();
    // A failure is kept, then the target goes on with a new seed for the runs left, the failures already
    // found counting as passes: one bug does not hide the next one on the same target.
    const known = new Set<string>();
    let left = RUNS;
    for (let round = 0; round < 3 && left > 0; round++) {
      const seed = seedFor(`${target}#${round}`);
      let lastFailure: Failure | undefined;
      let ran = 0;
      let failedAt = -1;
      const result = await fc.check(
        fc.asyncProperty(cases, async (example) => {
          // Shrinking past its budget: every further candidate passes, so the smallest failure so far stays.
          if (failedAt >= 0 && ran - failedAt >= SHRINK_BUDGET) return;
          ran += 1;
          try {
            await run(example);
          } catch (error) {
            const failure =
              error instanceof Failure ? error : new Failure('test error', { error: String(error) });
            if (known.has(failure.kind)) return;
            if (failedAt < 0) failedAt = ran;
            lastFailure = failure;
            throw failure;
          }
        }),
        { seed, numRuns: left, interruptAfterTimeLimit: TARGET_LIMIT_MS, markInterruptAsFailure: false },
      );
      figures.cases_run_incl_shrinking += ran;
      left -= result.numRuns;
      if (result.interrupted) interrupted.push(target);
      if (!result.failed || result.interrupted) break;
      const counterexample = result.counterexample?.[0] as T | undefined;
      const failure = lastFailure ?? new Failure('failed', { error: String(result.errorInstance) });
      known.add(failure.kind);
      const entry: Regression = {
        kind,
        server: current.name,
        target,
        failure: failure.kind,
        seed: result.seed,
        path: result.counterexamplePath ?? '',
        found_at: new Date().toISOString(),
        case: counterexample!,
        evidence: failure.evidence,
      };
      if (counterexample && keepRegression(entry)) figures.regressions_kept += 1;
      failed.push({ target, kind: failure.kind });
      failures.push(
        `${target}: ${failure.kind} (seed ${result.seed}, path ${result.counterexamplePath})\n` +
          `counterexample: ${JSON.stringify(counterexample).slice(0, 3000)}\n${failure.message}`,
      );
    }
    await healthCheck(target);
    durations.set(target, Date.now() - began);
  }

  /** Signs the admin in on the current server, and makes the member and the login fixture user there. */
  async function setUpPeople(): Promise<void> {
    const adminPerson = await login(server, ADMIN_EMAIL, ADMIN_PASSWORD);
    people.admin = { ...adminPerson, password: ADMIN_PASSWORD };
    signedInAt.admin = Date.now();
    const memberEmail = uniqueEmail('fuzz-member');
    const memberPassword = strongPassword();
    await ok(
      api(server, adminPerson, 'POST', '/admin/users', {
        email: memberEmail,
        name: 'Fuzz Member',
        department: 'Engineering',
        password: memberPassword,
      }),
      201,
    );
    people.member = { ...(await login(server, memberEmail, memberPassword)), password: memberPassword };
    signedInAt.member = Date.now();
    await ok(
      api(server, adminPerson, 'POST', '/admin/users', {
        email: loginEmail,
        name: 'Fuzz Login',
        department: 'Engineering',
        password: LOGIN_PASSWORD,
      }),
      201,
    );
    for (const role of ['admin', 'member'] as const) sockets[role] = await connectTo(server, people[role]);
    dirty = true;
  }

  beforeAll(async () => {
    // Both servers start together (each start is mostly waiting).
    const both = await Promise.all(
      [PRIMARY, DETECTION].map((d) => startSwitchboard(d.name, { databaseName: d.databaseName, env: d.env })),
    );
    server = both[0]!;
    detectionServer = both[1]!;
    client = new MongoClient(sharedDatabaseUrl());
    await client.connect();
    db = client.db(PRIMARY.databaseName);
    await setUpPeople();

    const document = await ok<{
      paths: Record<
        string,
        Record<
          string,
          { parameters?: Parameter[]; requestBody?: { content?: Record<string, { schema?: Schema }> } }
        >
      >;
      components?: { schemas?: Record<string, Schema> };
    }>(api(server, undefined, 'GET', '/openapi.json'));
    components = document.components?.schemas ?? {};
    const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
    operations = Object.entries(document.paths).flatMap(([template, item]) =>
      Object.entries(item)
        .filter(([method]) => methods.includes(method))
        .map(([method, op]) => ({
          method: method.toUpperCase(),
          template,
          key: `${method.toUpperCase()} ${template}`,
          parameters: op.parameters ?? [],
          bodies: Object.fromEntries(
            Object.entries(op.requestBody?.content ?? {}).map(([type, c]) => [type, c.schema ?? {}]),
          ),
        })),
    );
    console.warn(
      `[fuzz] seed ${BASE_SEED} (FUZZ_SEED=${BASE_SEED} repeats this run), ${RUNS} cases per target`,
    );
  });

  afterAll(async () => {
    /** A check's sentence, or what broke it (each failure's target and kind). */
    const check = (sentence: string, breaks: (f: { target: string; kind: string }) => boolean): string => {
      const broken = [...new Set(failed.filter(breaks).map((f) => `${f.target} (${f.kind})`))];
      return broken.length ? `FAILED: ${sentence} Broken by: ${broken.join('; ')}.` : sentence;
    };
    const http = (f: { target: string }) => !f.target.startsWith('frame ');
    const checks = [
      `The ${figures.regressions_replayed} kept regressions of fuzz-regressions.json were replayed first (one still failing is listed under the check it breaks).`,
      check(
        `${figures.http_operations} REST operations (every one in the OpenAPI document) × ${RUNS} generated requests, as an admin and a member: no 5xx (503 included).`,
        (f) => http(f) && /^status 5|no answer/.test(f.kind),
      ),
      check('The server process stayed up and health answered 200 after every batch.', (f) =>
        /^crash|^health/.test(f.kind),
      ),
      check(
        `Rejected writes (${figures.rejected_writes_checked} checked) left ${COUNTED.join(', ')} untouched (document counts before and after) and the fixture messages, file and announcement unchanged.`,
        (f) => f.kind.startsWith('stored on a rejected request'),
      ),
      check(
        `${figures.frame_types} frame types and malformed frames × ${RUNS}: every frame with an id got its ack or error, every bad frame an error, and no error code of a 5xx.`,
        (f) => !http(f) && /no answer|got no error|^frame error/.test(f.kind),
      ),
      check(
        'After every bad frame the socket stayed open (an oversized frame closed it with the documented 1009).',
        (f) => /close/.test(f.kind),
      ),
      check('Rejected frames stored nothing.', (f) => f.kind.startsWith('stored on a rejected frame')),
    ];
    recordSection('fuzz', {
      summary:
        `Property-based fuzzing (fast-check, seed ${BASE_SEED}) of ${figures.http_operations} REST operations from ` +
        `the server's OpenAPI document and ${figures.frame_types} WebSocket frame types (plus malformed frames), ` +
        `${RUNS} cases each, as an admin and a member, detection off (the ${figures.detection_guarded_operations} ` +
        `routes detection guards again with detection on, its bans out of reach).`,
      figures: {
        profile: PROFILE.name,
        seed: BASE_SEED,
        runs_per_target: RUNS,
        ...figures,
        operations_accepted_at_least_once: operations.filter((o) => accepted.has(o.key)).length,
        operations_never_accepted:
          operations
            .filter((o) => !accepted.has(o.key))
            .map((o) => o.key)
            .join(', ') || 'none',
        frame_types_acked_at_least_once: FRAME_TYPES.filter((t) => accepted.has(`frame ${t}`)).length,
        frame_types_never_acked: FRAME_TYPES.filter((t) => !accepted.has(`frame ${t}`)).join(', ') || 'none',
        targets_interrupted_by_time_limit: interrupted.join(', ') || 'none',
        slowest_targets: [...durations]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 5)
          .map(([target, ms]) => `${target} ${(ms / 1000).toFixed(1)} s`)
          .join(', '),
        undocumented_frame_error_codes: [...undocumentedCodes].join(', ') || 'none',
        failures: failures.length,
        duration_s: Math.round((Date.now() - started) / 1000),
      },
      checks,
    });
    await client?.close();
    await stopEverything();
    for (const d of [PRIMARY, DETECTION]) fs.rmSync(d.logDir, { recursive: true, force: true });
  });

  /** Replays the kept regressions of the current server, each against fresh fixtures. */
  async function replay(): Promise<void> {
    const kept = readRegressions().filter((entry) => (entry.server ?? 'fuzz') === current.name);
    for (const entry of kept) {
      await makeFixtures();
      figures.regressions_replayed += 1;
      try {
        if (entry.kind === 'http') await runHttp(entry.target, entry.case as HttpCase);
        else await runFrame(entry.target.replace(/^frame /, ''), entry.case as FrameCase);
      } catch (error) {
        const kind = error instanceof Failure ? error.kind : 'test error';
        failed.push({ target: entry.target, kind });
        failures.push(
          `regression ${entry.target} on ${current.name} (${entry.failure}) still fails: ${String(error).slice(0, 3000)}`,
        );
      }
    }
    await healthCheck(`the kept regressions (${current.name})`);
  }

  it('replays every kept regression first', async () => {
    await replay();
    expect(failures).toEqual([]);
  });

  it('fuzzes every REST operation of the OpenAPI document', async () => {
    const before = failures.length;
    figures.http_operations = operations.length;
    expect(operations.length).toBeGreaterThan(50);
    for (const operation of operations) {
      if (dirty) await makeFixtures();
      await fuzz('http', operation.key, httpCases(operation), (example) => runHttp(operation.key, example));
    }
    expect(failures.slice(before)).toEqual([]);
  });

  it('fuzzes every WebSocket frame type, and malformed frames', async () => {
    const before = failures.length;
    figures.frame_types = FRAME_TYPES.length;
    for (const type of FRAME_TYPES) {
      if (dirty) await makeFixtures();
      await fuzz('frame', `frame ${type}`, frameCases(type), (example) => runFrame(type, example));
    }
    if (dirty) await makeFixtures();
    await fuzz('frame', 'frame malformed', malformedFrames, (example) => runFrame('malformed', example));
    expect(failures.slice(before)).toEqual([]);
  });

  it('fuzzes the routes detection guards on a server with detection on (bans out of reach)', async () => {
    const before = failures.length;
    current = DETECTION;
    server = detectionServer;
    db = client.db(DETECTION.databaseName);
    fixtures = {};
    await setUpPeople();
    await replay();
    const guarded = operations.filter((operation) => detectionGuarded.has(operation.key));
    figures.detection_guarded_operations = guarded.length;
    for (const operation of guarded) {
      if (dirty) await makeFixtures();
      await fuzz('http', operation.key, httpCases(operation), (example) => runHttp(operation.key, example));
    }
    expect(failures.slice(before)).toEqual([]);
  });
});
