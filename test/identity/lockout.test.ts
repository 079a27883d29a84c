// Lockout and throttling: consecutive failures lock an account (423 ACCOUNT_LOCKED with retry_after and
// Retry-After) with a doubling, capped delay; an admin can lift it; unknown emails lock the same way; too many
// failures from one address are throttled (429 LOGIN_THROTTLED). Each test uses its own client address.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  eventually,
  expectError,
  identityOverrides,
  login,
  loginOk,
  seedUser,
  uniqueEmail,
  type InjectResponse,
} from './fixtures.js';

const MAX_ATTEMPTS = 3;
const BASE_S = 2;
const MAX_S = 4;
const IP_MAX = 10;

let nextIp = 1;
const freshIp = () => `10.20.${Math.floor(nextIp / 250)}.${(nextIp++ % 250) + 1}`;

const WRONG = 'Definitely-Wrong-Password-77';

/** Asserts a 423 with a retry_after in 1..max seconds and a matching Retry-After header; returns it. */
function expectLocked(response: InjectResponse, max = MAX_S): number {
  const body = expectError(response, 423, 'ACCOUNT_LOCKED');
  const retryAfter = body.retry_after as number;
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(max);
  expect(response.headers['retry-after']).toBe(String(retryAfter));
  expect(response.body).not.toContain('access_token');
  return retryAfter;
}

describe('login lockout', () => {
  const testApp = useTestApp(
    identityOverrides({
      max_login_attempts: MAX_ATTEMPTS,
      lockout_base_s: BASE_S,
      lockout_max_s: MAX_S,
      ip_max_login_failures: IP_MAX,
    }),
  );
  const app = () => testApp().app;

  /** Fails MAX_ATTEMPTS times: the first ones are 401, the last one locks the account (423). */
  async function failUntilLocked(email: string, ip: string): Promise<number> {
    for (let i = 1; i < MAX_ATTEMPTS; i += 1) {
      expectError(await login(app(), { email, password: WRONG }, ip), 401, 'INVALID_CREDENTIALS');
    }
    return expectLocked(await login(app(), { email, password: WRONG }, ip));
  }

  /** Waits (polling with the right password) until the lock is over; every refusal meanwhile is a 423. */
  async function loginAfterLock(email: string, password: string, ip: string, retryAfter: number) {
    let last: InjectResponse | undefined;
    const ok = await eventually(
      async () => {
        last = await login(app(), { email, password }, ip);
        if (last.statusCode !== 200) expectLocked(last);
        return last.statusCode === 200;
      },
      (retryAfter + 3) * 1000,
      250,
    );
    expect(ok, `still refused: ${last?.body}`).toBe(true);
  }

  it('locks after MAX_LOGIN_ATTEMPTS consecutive failures; the right password is refused while locked', async () => {
    const { email, password } = await seedUser(app());
    const ip = freshIp();
    const retryAfter = await failUntilLocked(email, ip);
    expect(retryAfter).toBe(BASE_S);

    expectLocked(await login(app(), { email, password }, ip));
    // The lock belongs to the account, not to the address.
    expectLocked(await login(app(), { email: email.toUpperCase(), password }, freshIp()));
    expectLocked(await login(app(), { identifier: email, password: WRONG }, freshIp()));
  });

  it('the lock expires, then the right password works and the failure count starts again', async () => {
    const { email, password } = await seedUser(app());
    const ip = freshIp();
    const retryAfter = await failUntilLocked(email, ip);
    await loginAfterLock(email, password, ip, retryAfter);
    // Consecutive: after a success, one more failure is a plain 401 again.
    expectError(await login(app(), { email, password: WRONG }, ip), 401, 'INVALID_CREDENTIALS');
    await loginOk(app(), email, password);
  });

  it('a repeated lock lasts twice as long, up to the maximum', async () => {
    const { email, password } = await seedUser(app());
    const ip = freshIp();
    const first = await failUntilLocked(email, ip);
    expect(first).toBe(BASE_S);
    await loginAfterLock(email, password, ip, first);

    const second = await failUntilLocked(email, ip);
    expect(second).toBe(BASE_S * 2);
    expect(second).toBeGreaterThan(first);
    await loginAfterLock(email, password, ip, second);

    const third = await failUntilLocked(email, ip);
    expect(third).toBe(MAX_S); // doubling would give 8 s: capped
  });

  it('an admin unlock lifts the lock at once', async () => {
    const { email, password, user } = await seedUser(app());
    await failUntilLocked(email, freshIp());
    expectLocked(await login(app(), { email, password }, freshIp()));

    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const unlock = await app().inject({
      method: 'POST',
      url: `/api/v2/admin/users/${user.id}/unlock`,
      headers: bearer(admin.access_token),
    });
    expect(unlock.statusCode).toBe(200);
    expect(unlock.json()).toMatchObject({ id: user.id, email });

    const response = await login(app(), { email, password }, freshIp());
    expect(response.statusCode).toBe(200);
  });

  it('unlock by email works too, and an unknown user is 404 USER_NOT_FOUND', async () => {
    const { email, password } = await seedUser(app());
    await failUntilLocked(email, freshIp());
    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const unlock = await app().inject({
      method: 'POST',
      url: `/api/v2/admin/users/${encodeURIComponent(email.toUpperCase())}/unlock`,
      headers: bearer(admin.access_token),
    });
    expect(unlock.statusCode).toBe(200);
    expect((await login(app(), { email, password }, freshIp())).statusCode).toBe(200);

    const unknown = await app().inject({
      method: 'POST',
      url: '/api/v2/admin/users/ffffffffffffffffffffffff/unlock',
      headers: bearer(admin.access_token),
    });
    expectError(unknown, 404, 'USER_NOT_FOUND');
  });

  it('an unknown email is locked exactly like a real account (no enumeration through lockout)', async () => {
    const { email: known } = await seedUser(app());
    const unknown = uniqueEmail('ghost');
    const run = async (email: string) => {
      const ip = freshIp();
      const seen: unknown[] = [];
      for (let i = 0; i <= MAX_ATTEMPTS; i += 1) {
        const response = await login(app(), { email, password: WRONG }, ip);
        const { request_id: _id, ...body } = response.json<Record<string, unknown>>();
        seen.push({ status: response.statusCode, retryAfter: response.headers['retry-after'], body });
      }
      return seen;
    };
    const knownRun = await run(known);
    const unknownRun = await run(unknown);
    expect(unknownRun).toEqual(knownRun);
    expect((knownRun.at(-1) as { status: number }).status).toBe(423);
  });

  it('too many failures from one address → 429 LOGIN_THROTTLED, even with the right password; other addresses are unaffected', async () => {
    const { email, password } = await seedUser(app());
    const ip = freshIp();
    // Spread over many accounts so that no account reaches its own lock.
    for (let i = 0; i < IP_MAX; i += 1) {
      const response = await login(app(), { email: uniqueEmail('stuffing'), password: WRONG }, ip);
      expectError(response, 401, 'INVALID_CREDENTIALS');
    }
    const throttled = await login(app(), { email, password }, ip);
    const body = expectError(throttled, 429, 'LOGIN_THROTTLED');
    expect(body.retry_after).toBeGreaterThanOrEqual(1);
    expect(throttled.headers['retry-after']).toBe(String(body.retry_after));
    expect(throttled.body).not.toContain('access_token');

    expectError(
      await login(app(), { email: uniqueEmail('more'), password: WRONG }, ip),
      429,
      'LOGIN_THROTTLED',
    );
    // The account itself is not locked: from another address it logs in.
    expect((await login(app(), { email, password }, freshIp())).statusCode).toBe(200);
  });
});
