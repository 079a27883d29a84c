// What every reliability test uses: a private FerretDB it may stop and start, the server as real
// processes (src/server.ts under tsx, configured only by its environment), the API over real HTTP, people
// made by the first admin, real WebSocket clients, and the server's own health figures. Everything it
// starts is stopped by `stopEverything` (call it in afterAll).
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, inject } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/index.js';
import {
  ensureFerretDbBinary,
  freePort,
  launchFerretDb,
  type FerretDbServer,
} from '../../src/db/embedded.js';
import type { Person } from '../conversations/fixtures.js';
import { TEST_SECRET, uniqueDatabaseName } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  strongPassword,
  unique,
  uniqueEmail,
} from '../identity/fixtures.js';
import { rawSocket, wsUrl, type TestSocket } from '../realtime/client.js';
import {
  PrivateRedis,
  health,
  kill,
  startServer,
  stopAll,
  waitForHealth,
  type Health,
  type ServerProcess,
} from '../realtime/processes.js';

export {
  PrivateRedis,
  health,
  kill,
  waitForHealth,
  type Health,
  type Person,
  type ServerProcess,
  type TestSocket,
};

export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const cleanups: (() => Promise<void>)[] = [];

/** Stops every server, database and socket the test started (afterAll). */
export async function stopEverything(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await stopAll();
}

// ---- the database ----

export interface PrivateDatabase {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A FerretDB of the test's own (never the suite's shared one), stoppable and restartable on one port. */
export async function privateDatabase(): Promise<PrivateDatabase> {
  const { config } = loadConfig({ env: {}, cwd: os.tmpdir() });
  const binary = await ensureFerretDbBinary(config.database.cache_dir, () => {});
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-reliability-db-'));
  const port = await freePort();
  let server: FerretDbServer | undefined;
  const db: PrivateDatabase = {
    url: `mongodb://127.0.0.1:${port}/`,
    start: async () => {
      server ??= await launchFerretDb({ binary, dataDir, port });
    },
    stop: async () => {
      await server?.stop();
      server = undefined;
    },
  };
  cleanups.push(async () => {
    await db.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  await db.start();
  return db;
}

/** The suite's shared database server (from test/global-setup.ts), for tests that never stop it. */
export function sharedDatabaseUrl(): string {
  return inject('mongoUrl');
}

// ---- the server ----

export interface ServerOptions {
  /** MONGO_URL (default: the suite's shared database). */
  databaseUrl?: string;
  /** DB_NAME (default: a fresh one). Two instances of one deployment share it. */
  databaseName?: string;
  port?: number;
  /** More environment (REDIS_URL, limits…); it wins over the defaults below. */
  env?: Record<string, string>;
}

/**
 * Starts src/server.ts as an operator would (production mode, a first admin, JSON logs to its own folder)
 * and waits until it is ready. Limits that would refuse a test's own traffic are raised; detection stays
 * on with its defaults.
 */
export async function startSwitchboard(name: string, options: ServerOptions = {}): Promise<ServerProcess> {
  const env = {
    MONGO_URL: options.databaseUrl ?? sharedDatabaseUrl(),
    DB_NAME: options.databaseName ?? uniqueDatabaseName(),
    SECRET_KEY: TEST_SECRET,
    DEBUG: 'false',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    MESSAGES_PER_MINUTE: '1000000',
    RATE_LIMIT_PER_MINUTE: '10000000',
    LOGIN_RATE_LIMIT: '1000000',
    MAX_LOGIN_ATTEMPTS: '1000',
    IP_MAX_LOGIN_FAILURES: '1000000',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    HEALTH_CHECK_INTERVAL: '0.2',
    LOG_CONSOLE: 'off',
    ...options.env,
  };
  const server = startServer(name, options.port ?? (await freePort()), env);
  environments.set(server, env);
  cleanups.push(() => kill(server.child));
  await waitForHealth(server, ({ statusCode }) => statusCode === 200, 90_000);
  return server;
}

/** Each started server's environment, so a restart runs the very same deployment. */
const environments = new WeakMap<ServerProcess, Record<string, string>>();

/** Restarts a server process (after `kill`) on the same port with the same environment. */
export async function restart(server: ServerProcess): Promise<ServerProcess> {
  const env = environments.get(server);
  if (!env) throw new Error(`${server.name} was not started by startSwitchboard`);
  const again = startServer(server.name, server.port, env);
  environments.set(again, env);
  cleanups.push(() => kill(again.child));
  await waitForHealth(again, ({ statusCode }) => statusCode === 200, 90_000);
  return again;
}

/**
 * The environment that opens a server's inspector on `port` (127.0.0.1 only), for `collectGarbage`.
 * Nothing is attached until it is called, so the server runs as it would without it.
 */
export function inspectorEnv(port: number): Record<string, string> {
  return { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` };
}

/**
 * A full garbage collection in the server process, through its inspector (see `inspectorEnv`): memory
 * measured afterwards is what the server keeps, not garbage a later collection would have freed, so a
 * leak check does not depend on when V8 last ran a full collection.
 */
export async function collectGarbage(inspectorPort: number): Promise<void> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const socket = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  try {
    await once(socket, 'open');
    socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    // The only reply is the one to id 1, sent once the collection has finished.
    await once(socket, 'message');
  } finally {
    socket.close();
  }
}

/** The figures health keeps: RSS and heap, for the memory checks. */
export async function memoryOf(server: ServerProcess): Promise<{ rss: number; heap: number }> {
  const response = await fetch(`http://127.0.0.1:${server.port}/api/v2/health`);
  const body = (await response.json()) as { system?: { rss_bytes: number; heap_used_bytes: number } };
  return { rss: body.system?.rss_bytes ?? Number.NaN, heap: body.system?.heap_used_bytes ?? Number.NaN };
}

// ---- the API ----

export interface Answer<T> {
  status: number;
  body: T;
}

export async function api<T = Record<string, unknown>>(
  server: ServerProcess,
  who: Person | undefined,
  method: string,
  url: string,
  payload?: unknown,
  timeoutMs = 30_000,
): Promise<Answer<T>> {
  const response = await fetch(`http://127.0.0.1:${server.port}/api/v2${url}`, {
    method,
    headers: {
      ...(who ? bearer(who.token) : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(payload !== undefined ? { body: JSON.stringify(payload) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (never for our routes): kept as text for the failure message
  }
  return { status: response.status, body: body as T };
}

export async function ok<T = Record<string, unknown>>(answer: Promise<Answer<T>>, status = 200): Promise<T> {
  const resolved = await answer;
  expect(resolved.status, JSON.stringify(resolved.body)).toBe(status);
  return resolved.body;
}

export async function login(server: ServerProcess, email: string, password: string): Promise<Person> {
  const body = await ok<{ access_token: string; user: { id: string; name: string } }>(
    api(server, undefined, 'POST', '/auth/login', { email, password }),
  );
  return {
    id: body.user.id,
    email,
    name: body.user.name,
    token: body.access_token,
    headers: bearer(body.access_token),
  };
}

export function loginAdmin(server: ServerProcess): Promise<Person> {
  return login(server, ADMIN_EMAIL, ADMIN_PASSWORD);
}

/** A new member made by `admin`, signed in on `server`. */
export async function newPerson(server: ServerProcess, admin: Person): Promise<Person> {
  const email = uniqueEmail('rel');
  const password = strongPassword();
  await ok(
    api(server, admin, 'POST', '/admin/users', {
      email,
      name: `Person ${unique('n')}`,
      department: 'Engineering',
      password,
    }),
    201,
  );
  return login(server, email, password);
}

/** A group channel owned by `owner` with `members`. */
export async function newGroup(server: ServerProcess, owner: Person, members: Person[]): Promise<string> {
  const channel = await ok<{ id: string }>(
    api(server, owner, 'POST', '/channels', {
      kind: 'group',
      name: unique('rel-group'),
      members: members.map((m) => m.id),
    }),
    201,
  );
  return channel.id;
}

// ---- reading a channel back ----

/** A message as the API returns it, with the fields the reliability checks compare. */
export interface StoredMessage {
  id: string;
  channel_id: string;
  seq: number;
  change_seq: number;
  sender_id: string;
  content: string;
  client_id: string | null;
}

/** Every message of a channel, oldest first (GET /messages paged by seq). */
export async function channelHistory(
  server: ServerProcess,
  who: Person,
  channelId: string,
): Promise<StoredMessage[]> {
  const all: StoredMessage[] = [];
  let after = 0;
  for (;;) {
    const page = await ok<{ messages: StoredMessage[]; has_more: boolean }>(
      api(server, who, 'GET', `/channels/${channelId}/messages?after_seq=${after}&limit=200`),
    );
    all.push(...page.messages);
    if (!page.has_more || page.messages.length === 0) return all;
    after = page.messages.at(-1)!.seq;
  }
}

/** Pages GET /changes from `since` to the end; returns what it read and the new mark. */
export async function channelChanges(
  server: ServerProcess,
  who: Person,
  channelId: string,
  since = 0,
): Promise<{ messages: StoredMessage[]; mark: number }> {
  const all: StoredMessage[] = [];
  let mark = since;
  for (;;) {
    const page = await ok<{ messages: StoredMessage[]; has_more: boolean; last_seq: number }>(
      api(server, who, 'GET', `/channels/${channelId}/changes?since_seq=${mark}&limit=200`),
    );
    all.push(...page.messages);
    mark = page.last_seq;
    if (!page.has_more || page.messages.length === 0) return { messages: all, mark };
  }
}

/** How many of `values` fall under each key. */
export function countBy<T>(values: readonly T[], key: (value: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[key(value)] = (counts[key(value)] ?? 0) + 1;
  return counts;
}

// ---- sockets ----

/** Opens a socket as `who` on `server` and waits for `hello`. */
export async function connectTo(server: ServerProcess, who: Person, timeoutMs = 10_000): Promise<TestSocket> {
  const socket = rawSocket(wsUrl(server.port, who.id), who.headers);
  cleanups.push(async () => void (await socket.close()));
  await socket.waitForType('hello', () => true, timeoutMs);
  return socket;
}

/** A percentile of a list of numbers (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
