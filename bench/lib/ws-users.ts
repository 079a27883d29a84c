// The people of bench:ws: a thousand accounts, each with one session and an access token, all members of
// one public channel. Accounts and sessions are written straight into the database, shaped as the app
// stores them (UsersService.insertUser, AuthService.openSession), and their access tokens are signed here
// as AuthService.signAccess signs them (HS256 with the key the app derives from SECRET_KEY, which the
// benchmark chose): through the API, a thousand imports and logins (or refreshes) take minutes on the
// embedded database, whose lookups by anything but an id read the whole collection. The first token is
// checked against the app before anything else. Channel membership goes through the API.
import { createHmac } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { COLLECTIONS } from '../../src/db/collections.js';
import { deriveKey, randomToken, sha256 } from '../../src/lib/crypto.js';
import { newId } from '../../src/lib/ids.js';
import type { SessionDoc } from '../../src/repositories/sessions.js';
import type { UserDoc } from '../../src/repositories/users.js';
import { searchTerms } from '../../src/services/users.js';

export interface BenchUser {
  id: string;
  email: string;
  token: string;
}

export async function api<T>(
  base: string,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  expect: number[] = [200, 201],
): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!expect.includes(response.status)) {
    throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 500)}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function login(base: string, email: string, password: string): Promise<string> {
  const { access_token: token } = await api<{ access_token: string }>(
    base,
    'POST',
    '/api/v2/auth/login',
    undefined,
    { email, password },
    [200],
  );
  return token;
}

/** An access token as the app signs it: `{sub, sid, roles}`, HS256, with an expiry. */
function accessToken(secret: string, claims: { sub: string; sid: string; roles: string[] }, ttlS: number) {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ ...claims, iat, exp: iat + ttlS })}`;
  const signature = createHmac('sha256', deriveKey(secret, 'access-token')).update(body).digest('base64url');
  return `${body}.${signature}`;
}

/** Writes `count` accounts with a session each and signs each one an access token valid for `ttlS`. */
export async function seedUsers(options: {
  database: { url: string; name: string };
  secret: string;
  ttlS: number;
  count: number;
  log: (line: string) => void;
}): Promise<BenchUser[]> {
  const started = performance.now();
  const now = new Date();
  const users: UserDoc[] = [];
  const sessions: SessionDoc[] = [];
  for (let i = 0; i < options.count; i++) {
    const email = `ws.bench.${i}@example.com`;
    const name = `Bench User ${i}`;
    users.push({
      _id: newId(),
      email,
      email_lower: email,
      name,
      name_lower: name.toLowerCase(),
      search_terms: searchTerms(`${name} ${email.split('@')[0]} ${email}`),
      department: 'WS Bench',
      team: null,
      designation: null,
      roles: ['member'],
      status: 'active',
      password_hash: null,
      avatar_file_id: null,
      created_at: now,
      updated_at: now,
      last_seen_at: null,
    });
    const sessionId = randomToken(18);
    sessions.push({
      _id: sessionId,
      user_id: users[i]!._id,
      refresh_hash: sha256(`${sessionId}.${randomToken(32)}`),
      previous_refresh_hashes: [],
      created_at: now,
      last_used_at: now,
      expires_at: new Date(now.getTime() + 86_400_000),
      revoked_at: null,
      revoked_reason: null,
      ip: '127.0.0.1',
      user_agent: 'bench:ws',
    });
  }
  const client = new MongoClient(options.database.url);
  try {
    const db = client.db(options.database.name);
    await db.collection<UserDoc>(COLLECTIONS.users).insertMany(users, { ordered: false });
    await db.collection<SessionDoc>(COLLECTIONS.sessions).insertMany(sessions, { ordered: false });
  } finally {
    await client.close();
  }
  const seeded = users.map((user, i) => ({
    id: user._id,
    email: user.email,
    token: accessToken(
      options.secret,
      { sub: user._id, sid: sessions[i]!._id, roles: user.roles },
      options.ttlS,
    ),
  }));
  options.log(
    `${options.count} users with sessions and access tokens in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return seeded;
}

/** The app must take a seeded token as its user's (else the token format above no longer matches). */
export async function checkToken(base: string, user: BenchUser): Promise<void> {
  const session = await api<{ user_id?: string }>(base, 'GET', '/api/v2/auth/session', user.token);
  if (session.user_id !== user.id) {
    throw new Error(`a seeded token is not accepted as its user: ${JSON.stringify(session)}`);
  }
}

/** A public channel with every user in it (added by the administrator); checked by listing its members. */
export async function channelOf(options: {
  base: string;
  adminToken: string;
  users: BenchUser[];
  name: string;
  log: (line: string) => void;
}): Promise<string> {
  const { base, adminToken, users } = options;
  const started = performance.now();
  const channel = await api<{ id: string }>(base, 'POST', '/api/v2/channels', adminToken, {
    name: options.name,
    kind: 'public',
  });
  for (let first = 0; first < users.length; first += 500) {
    await api(base, 'POST', `/api/v2/channels/${channel.id}/members`, adminToken, {
      members: users.slice(first, first + 500).map((user) => user.id),
    });
  }
  const members = new Set<string>();
  let cursor: string | null = null;
  do {
    const page: { members: { user_id: string }[]; next_cursor: string | null } = await api(
      base,
      'GET',
      `/api/v2/channels/${channel.id}/members?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      adminToken,
    );
    for (const member of page.members) members.add(member.user_id);
    cursor = page.next_cursor;
  } while (cursor);
  const missing = users.filter((user) => !members.has(user.id)).length;
  if (missing)
    throw new Error(`channel ${options.name}: ${missing} of ${users.length} users are not members`);
  options.log(
    `channel ${options.name} (${channel.id}) has all ${users.length} users ` +
      `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  return channel.id;
}
