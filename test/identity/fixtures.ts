// Shared helpers for the identity tests: the first admin's credentials, seeding users through the users
// service, logging in over HTTP, and checks on the contract's error body. Everything runs against the real
// app that test/helper.ts builds; nothing here writes to a collection directly.
import { createHmac, randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse as InjectResponse } from 'fastify';
import { expect } from 'vitest';
import type { Role } from '../../src/auth/permissions.js';
import { NO_REQUEST, SYSTEM_ACTOR } from '../../src/services/context.js';
import type { PublicUser } from '../../src/services/users.js';

export type { InjectResponse };

export const ADMIN_EMAIL = 'admin@example.com';
/** Strong, not one of the common passwords, and free of the admin's name and email. */
export const ADMIN_PASSWORD = 'Violet-Harbour-Lantern-8142';

type Overrides = Record<string, Record<string, unknown>>;

/** Overrides that create the first admin, plus generous login limits unless a test asks otherwise. */
export function identityOverrides(auth: Record<string, unknown> = {}, extra: Overrides = {}): Overrides {
  return {
    ...extra,
    auth: {
      admin_email: ADMIN_EMAIL,
      admin_password: ADMIN_PASSWORD,
      max_login_attempts: 50,
      ip_max_login_failures: 1000,
      ...auth,
    },
  };
}

let counter = 0;
/** A fresh, unique token for emails and names (tests never share accounts by accident). */
export function unique(prefix = 'u'): string {
  counter += 1;
  return `${prefix}${counter}x${randomBytes(3).toString('hex')}`;
}

export function uniqueEmail(prefix = 'user'): string {
  return `${unique(prefix)}@example.com`;
}

/** A password the strength rules accept (long, uncommon, unrelated to any seeded name). */
export function strongPassword(): string {
  return `Quartz-Meadow-${randomBytes(4).toString('hex')}-Pylon`;
}

export interface SeedUser {
  email?: string;
  name?: string;
  department?: string;
  team?: string | null;
  designation?: string | null;
  roles?: Role[];
  password?: string | null;
}

export interface SeededUser {
  user: PublicUser;
  email: string;
  password: string;
}

/** Creates a user through the users service, as the system (the real code path of the admin route). */
export async function seedUser(app: FastifyInstance, input: SeedUser = {}): Promise<SeededUser> {
  const email = input.email ?? uniqueEmail();
  const password = input.password === undefined ? strongPassword() : input.password;
  const { user } = await app.users.create(
    SYSTEM_ACTOR,
    {
      email,
      name: input.name ?? `Person ${unique('n')}`,
      department: input.department ?? 'Engineering',
      team: input.team ?? null,
      designation: input.designation ?? null,
      roles: input.roles ?? ['member'],
      ...(password === null ? {} : { password }),
    },
    NO_REQUEST,
  );
  return { user, email, password: password ?? '' };
}

export interface TokenPairBody {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  user: PublicUser;
}

export function login(
  app: FastifyInstance,
  body: Record<string, unknown>,
  remoteAddress?: string,
): Promise<InjectResponse> {
  return app.inject({
    method: 'POST',
    url: '/api/v2/auth/login',
    payload: body,
    ...(remoteAddress ? { remoteAddress } : {}),
  });
}

/** Logs in over HTTP and returns the token pair (fails the test when login does not succeed). */
export async function loginOk(app: FastifyInstance, email: string, password: string): Promise<TokenPairBody> {
  const response = await login(app, { email, password });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<TokenPairBody>();
}

/** A seeded user with an open session. */
export async function seedAndLogin(
  app: FastifyInstance,
  input: SeedUser = {},
): Promise<SeededUser & { tokens: TokenPairBody; headers: { authorization: string } }> {
  const seeded = await seedUser(app, input);
  const tokens = await loginOk(app, seeded.email, seeded.password);
  return { ...seeded, tokens, headers: bearer(tokens.access_token) };
}

export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Asserts the contract's error body: status, stable code, status text, message and request id. */
export function expectError(response: InjectResponse, status: number, code: string): Record<string, unknown> {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json<Record<string, unknown>>();
  expect(body).toMatchObject({ statusCode: status, code });
  expect(typeof body.message).toBe('string');
  expect(typeof body.error).toBe('string');
  expect(body.request_id).toBe(response.headers['x-request-id']);
  return body;
}

/**
 * Asserts a 400 VALIDATION_FAILED whose details name `field`: as the path of a detail, or, for a field the
 * schema does not know, in the message of one (`Unrecognized key: "roles"`).
 */
export function expectValidation(response: InjectResponse, field: string): void {
  const body = expectError(response, 400, 'VALIDATION_FAILED');
  const details = body.details as { path: string; message: string }[] | undefined;
  expect(details, response.body).toBeDefined();
  expect(
    details!.some(
      (detail) =>
        detail.path === field || detail.path.startsWith(`${field}.`) || detail.message.includes(`"${field}"`),
    ),
    `details should name ${field}: ${response.body}`,
  ).toBe(true);
}

/** Public user objects never carry credentials or internal search fields. */
export function expectPublicUser(user: Record<string, unknown>): void {
  for (const key of ['password', 'password_hash', 'email_lower', 'name_lower', 'search_terms', '_id'])
    expect(user).not.toHaveProperty(key);
  expect(Object.keys(user).sort()).toEqual(
    [
      'avatar_file_id',
      'created_at',
      'department',
      'designation',
      'email',
      'id',
      'last_seen_at',
      'name',
      'roles',
      'status',
      'team',
      'updated_at',
    ].sort(),
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it became true. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export function me(app: FastifyInstance, token: string): Promise<InjectResponse> {
  return app.inject({ method: 'GET', url: '/api/v2/users/me', headers: bearer(token) });
}

/**
 * Asserts that an access token is refused (401 INVALID_TOKEN) within the contract's one second, polling so
 * the test does not depend on exact timing (1.5 s of slack for a slow machine).
 */
export async function expectTokenRefusedSoon(app: FastifyInstance, token: string): Promise<void> {
  let last: InjectResponse | undefined;
  const refused = await eventually(async () => {
    last = await me(app, token);
    return last.statusCode === 401;
  }, 1_500);
  expect(refused, `token still accepted: ${last?.statusCode} ${last?.body}`).toBe(true);
  expectError(last!, 401, 'INVALID_TOKEN');
}

/** The directory entries matching `q` (as the admin or any member sees them). */
export async function directory(
  app: FastifyInstance,
  token: string,
  query: Record<string, string>,
): Promise<{ users: PublicUser[]; next_cursor: string | null; has_more: boolean }> {
  const response = await app.inject({ method: 'GET', url: '/api/v2/users', query, headers: bearer(token) });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

/** Whether a user with this email exists (looked up through the API, case-insensitively). */
export async function userExists(app: FastifyInstance, token: string, email: string): Promise<boolean> {
  const response = await app.inject({
    method: 'GET',
    url: `/api/v2/users/${encodeURIComponent(email)}`,
    headers: bearer(token),
  });
  expect([200, 404]).toContain(response.statusCode);
  return response.statusCode === 200;
}

// ---- hand-made JWTs (no JWT library: each part is built here so tampering is explicit) ----

export function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export function decodeJwtPart(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** A compact JWT with the given header and payload, signed with HMAC-`hash` under `key` (or unsigned). */
export function handMadeJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: Buffer | string | null,
  hash: 'sha256' | 'sha512' = 'sha256',
): string {
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature = key === null ? '' : createHmac(hash, key).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}
