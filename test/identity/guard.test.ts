// Password guessing limits that hold under pressure: a burst of parallel guesses, the current-password check
// of a password change, one-time tokens that die with the password they were for, and the admin area that
// refuses non-admins before it reads their body.
import { describe, expect, it } from 'vitest';
import { SYSTEM_ACTOR, NO_REQUEST } from '../../src/services/context.js';
import { useTestApp } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  directory,
  expectError,
  identityOverrides,
  login,
  loginOk,
  seedAndLogin,
  seedUser,
  strongPassword,
  uniqueEmail,
} from './fixtures.js';

const MAX_ATTEMPTS = 3;
const WRONG = 'Definitely-Wrong-Password-77';

describe('password guessing limits', () => {
  const testApp = useTestApp(
    identityOverrides({
      max_login_attempts: MAX_ATTEMPTS,
      lockout_base_s: 30,
      lockout_max_s: 60,
      ip_max_login_failures: 10_000,
    }),
  );
  const app = () => testApp().app;

  it('a burst of parallel guesses gets no more password checks than the limit, and never a 5xx', async () => {
    const { email, password } = await seedUser(app());
    const guesses = Array.from({ length: 20 }, () => login(app(), { email, password: WRONG }, '10.30.0.1'));
    const statuses = (await Promise.all(guesses)).map((response) => response.statusCode);
    expect(
      statuses.every((status) => status === 401 || status === 423),
      statuses.join(),
    ).toBe(true);
    // Only the attempts within the allowance were checked; every other one was refused as locked.
    expect(statuses.filter((status) => status === 401).length).toBeLessThanOrEqual(MAX_ATTEMPTS);
    expect(statuses.filter((status) => status === 423).length).toBeGreaterThanOrEqual(20 - MAX_ATTEMPTS);
    // And the account is locked now, for the right password too.
    expectError(await login(app(), { email, password }, '10.30.0.2'), 423, 'ACCOUNT_LOCKED');
  });

  it('the right password arriving amid a burst of guesses is answered normally (200 or 423, never 5xx)', async () => {
    const { email, password } = await seedUser(app());
    const guesses = Array.from({ length: 10 }, () => login(app(), { email, password: WRONG }, '10.30.0.3'));
    const responses = await Promise.all([login(app(), { email, password }, '10.30.0.3'), ...guesses]);
    expect([200, 423]).toContain(responses[0]!.statusCode);
    for (const response of responses.slice(1)) expect([401, 423]).toContain(response.statusCode);
  });

  it('guessing the current password in a password change is limited like a login', async () => {
    const { email, password, headers } = await seedAndLogin(app());
    const change = (current: string) =>
      app().inject({
        method: 'POST',
        url: '/api/v2/users/me/password',
        headers,
        payload: { current_password: current, new_password: strongPassword() },
        remoteAddress: '10.30.1.1',
      });
    for (let i = 0; i < MAX_ATTEMPTS - 1; i++) expectError(await change(WRONG), 403, 'WRONG_PASSWORD');
    expectError(await change(WRONG), 423, 'ACCOUNT_LOCKED');
    // Locked: even the right current password is refused, and so is a login.
    expectError(await change(password), 423, 'ACCOUNT_LOCKED');
    expectError(await login(app(), { email, password }, '10.30.1.2'), 423, 'ACCOUNT_LOCKED');
  });
});

describe('one-time set-password tokens', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('stop working once the password is set another way', async () => {
    const email = uniqueEmail();
    const { set_password_token: token } = await app().users.create(
      SYSTEM_ACTOR,
      { email, name: 'Token Holder', department: 'Ops' },
      NO_REQUEST,
    );
    expect(token).toBeTruthy();
    await app().users.resetPassword(SYSTEM_ACTOR, email, strongPassword(), NO_REQUEST);
    const used = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/set-password',
      payload: { token, password: strongPassword() },
    });
    expectError(used, 400, 'INVALID_SET_PASSWORD_TOKEN');
  });

  it('stop working when the account is disabled', async () => {
    const email = uniqueEmail();
    const { user, set_password_token: token } = await app().users.create(
      SYSTEM_ACTOR,
      { email, name: 'Leaver Person', department: 'Ops' },
      NO_REQUEST,
    );
    await app().users.adminUpdate(SYSTEM_ACTOR, user.id, { status: 'disabled' }, NO_REQUEST);
    await app().users.adminUpdate(SYSTEM_ACTOR, user.id, { status: 'active' }, NO_REQUEST);
    const used = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/set-password',
      payload: { token, password: strongPassword() },
    });
    expectError(used, 400, 'INVALID_SET_PASSWORD_TOKEN');
  });
});

describe('exactly once under concurrency', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('a set-password token used ten times at once sets a password once', async () => {
    const { set_password_token: token } = await app().users.create(
      SYSTEM_ACTOR,
      { email: uniqueEmail(), name: 'Racing Person', department: 'Ops' },
      NO_REQUEST,
    );
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        app().inject({
          method: 'POST',
          url: '/api/v2/auth/set-password',
          payload: { token, password: strongPassword() },
        }),
      ),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 204)).toHaveLength(1);
    expect(statuses.filter((status) => status === 400)).toHaveLength(9);
  });

  it('a refresh token presented ten times at once rotates at most once, and the race ends the session', async () => {
    const { tokens } = await seedAndLogin(app());
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        app().inject({
          method: 'POST',
          url: '/api/v2/auth/refresh',
          payload: { refresh_token: tokens.refresh_token },
        }),
      ),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 200).length).toBeLessThanOrEqual(1);
    expect(statuses.every((status) => status === 200 || status === 401)).toBe(true);
    // Two holders of one refresh token: nobody keeps the session.
    const winner = responses.find((response) => response.statusCode === 200);
    if (winner) {
      const next = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/refresh',
        payload: { refresh_token: winner.json().refresh_token },
      });
      expectError(next, 401, 'INVALID_TOKEN');
    }
  });
});

describe('smaller identity rules', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('the admin area refuses a member before reading a large body (403, not 400 or 413)', async () => {
    const { headers } = await seedAndLogin(app());
    const rows = Array.from({ length: 40_000 }, (_, i) => `p${i}@example.com,Person ${i},Ops`).join('\n');
    const response = await app().inject({
      method: 'POST',
      url: '/api/v2/admin/users/import',
      headers: { ...headers, 'content-type': 'text/csv' },
      payload: `email,name,department\n${rows}\n`,
    });
    expectError(response, 403, 'FORBIDDEN');
  });

  it('accepts the Bearer scheme in any case', async () => {
    const { tokens } = await seedAndLogin(app());
    const response = await app().inject({
      method: 'GET',
      url: '/api/v2/users/me',
      headers: { authorization: `bearer ${tokens.access_token}` },
    });
    expect(response.statusCode).toBe(200);
  });

  it('directory search requires every word to match', async () => {
    const department = `Dept-${Date.now()}`;
    const sam = await seedUser(app(), { name: 'Sam Smythe', department });
    const john = await seedUser(app(), { name: 'John Smith', department });
    const token = (await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD)).access_token;
    const ids = (await directory(app(), token, { q: 'john sm', department })).users.map((user) => user.id);
    expect(ids).toEqual([john.user.id]);
    expect(ids).not.toContain(sam.user.id);
  });

  it('refuses common passwords with digits or symbols around them', async () => {
    const token = (await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD)).access_token;
    for (const password of ['Password2024!', 'Qwerty123456!', 'Welcome@2024', '2024Letmein!!']) {
      const email = uniqueEmail();
      const response = await app().inject({
        method: 'POST',
        url: '/api/v2/admin/users',
        headers: bearer(token),
        payload: { email, name: 'Weak Choice', department: 'Ops', password },
      });
      expectError(response, 400, 'VALIDATION_FAILED');
      expect((await directory(app(), token, { q: email })).users).toEqual([]);
    }
  });
});
