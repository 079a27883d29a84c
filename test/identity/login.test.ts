// POST /api/v2/auth/login: by email or identifier, case-insensitive, the token pair's shape, the same answer
// for an unknown email and a wrong password, disabled accounts, and bad bodies.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  expectError,
  expectPublicUser,
  expectValidation,
  identityOverrides,
  login,
  loginOk,
  me,
  seedUser,
  uniqueEmail,
  type TokenPairBody,
} from './fixtures.js';

describe('POST /auth/login', () => {
  const testApp = useTestApp(identityOverrides({ access_token_ttl_s: 120 }));
  const app = () => testApp().app;

  it('logs in by email and returns a Bearer pair, its lifetime and the public user', async () => {
    const { email, password, user } = await seedUser(app(), { name: 'Lena Login', department: 'Sales' });
    const response = await login(app(), { email, password });
    expect(response.statusCode).toBe(200);
    const body = response.json<TokenPairBody>();
    expect(Object.keys(body).sort()).toEqual(
      ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user'].sort(),
    );
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(120);
    expect(body.access_token.split('.')).toHaveLength(3);
    expect(body.refresh_token.length).toBeGreaterThan(20);
    expect(body.user).toMatchObject({
      id: user.id,
      email,
      name: 'Lena Login',
      department: 'Sales',
      roles: ['member'],
      status: 'active',
    });
    expect(body.user.last_seen_at).not.toBeNull();
    expectPublicUser(body.user as unknown as Record<string, unknown>);
    expect(response.body).not.toContain(password);

    const profile = await me(app(), body.access_token);
    expect(profile.statusCode).toBe(200);
    expect(profile.json()).toMatchObject({ id: user.id, email });
  });

  it('accepts `identifier` as the email and ignores the case of the email', async () => {
    const { email, password, user } = await seedUser(app(), { email: uniqueEmail('MixedCase') });
    const byIdentifier = await login(app(), { identifier: email, password });
    expect(byIdentifier.statusCode).toBe(200);
    expect(byIdentifier.json().user.id).toBe(user.id);

    const upper = await login(app(), { email: `  ${email.toUpperCase()} `, password });
    expect(upper.statusCode).toBe(200);
    expect(upper.json().user.id).toBe(user.id);

    const lowerIdentifier = await login(app(), { identifier: email.toLowerCase(), password });
    expect(lowerIdentifier.statusCode).toBe(200);
  });

  it('the first admin logs in with ADMIN_EMAIL / ADMIN_PASSWORD', async () => {
    const body = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    expect(body.user.roles).toContain('admin');
  });

  it('answers a wrong password and an unknown email identically (no enumeration)', async () => {
    const { email } = await seedUser(app());
    const wrongPassword = await login(app(), { email, password: 'Not-The-Right-Password-1' });
    const unknownEmail = await login(app(), {
      email: uniqueEmail('nobody'),
      password: 'Not-The-Right-Password-1',
    });
    const wrongBody = expectError(wrongPassword, 401, 'INVALID_CREDENTIALS');
    const unknownBody = expectError(unknownEmail, 401, 'INVALID_CREDENTIALS');
    const { request_id: _a, ...wrongRest } = wrongBody;
    const { request_id: _b, ...unknownRest } = unknownBody;
    expect(wrongRest).toEqual(unknownRest);
    expect(wrongPassword.headers['retry-after']).toBeUndefined();
    expect(unknownEmail.headers['retry-after']).toBeUndefined();
  });

  it('a user created without a password cannot log in, with the same answer as a wrong password', async () => {
    const { email } = await seedUser(app(), { password: null });
    const response = await login(app(), { email, password: 'Anything-At-All-42' });
    expectError(response, 401, 'INVALID_CREDENTIALS');
  });

  it('refuses a disabled account with 403 ACCOUNT_DISABLED and no tokens', async () => {
    const { email, password, user } = await seedUser(app());
    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const disable = await app().inject({
      method: 'PATCH',
      url: `/api/v2/admin/users/${user.id}`,
      headers: bearer(admin.access_token),
      payload: { disabled: true },
    });
    expect(disable.statusCode).toBe(200);
    const response = await login(app(), { email, password });
    const body = expectError(response, 403, 'ACCOUNT_DISABLED');
    expect(body).not.toHaveProperty('access_token');
    expect(response.body).not.toContain('refresh_token');
  });

  describe('bad bodies: 400 VALIDATION_FAILED naming the field, and no session opened', () => {
    const cases: [string, unknown, string][] = [
      ['missing password', { email: 'someone@example.com' }, 'password'],
      ['missing email and identifier', { password: 'Whatever-Pass-123' }, 'email'],
      [
        'unknown field',
        { email: 'someone@example.com', password: 'Whatever-Pass-123', admin: true },
        'admin',
      ],
      ['email as a number', { email: 12345, password: 'Whatever-Pass-123' }, 'email'],
      ['password as an object', { email: 'someone@example.com', password: { $ne: '' } }, 'password'],
      ['password as an array', { email: 'someone@example.com', password: ['a'] }, 'password'],
      [
        'over-long email',
        { email: `${'a'.repeat(250)}@example.com`, password: 'Whatever-Pass-123' },
        'email',
      ],
      ['over-long password', { email: 'someone@example.com', password: 'p'.repeat(257) }, 'password'],
      ['empty email', { email: '   ', password: 'Whatever-Pass-123' }, 'email'],
      ['empty password', { email: 'someone@example.com', password: '' }, 'password'],
    ];
    it.each(cases)('%s', async (_name, payload, field) => {
      const response = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/login',
        payload: payload as object,
      });
      if (field) expectValidation(response, field);
      else {
        const body = expectError(response, 400, 'VALIDATION_FAILED');
        expect(Array.isArray(body.details) && body.details.length > 0).toBe(true);
      }
      expect(response.body).not.toContain('access_token');
    });

    it('a body that is not an object is refused with 400', async () => {
      const response = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/login',
        headers: { 'content-type': 'application/json' },
        payload: '["admin@example.com","x"]',
      });
      expectError(response, 400, 'VALIDATION_FAILED');
    });

    it('malformed JSON is refused with 400 INVALID_JSON', async () => {
      const response = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/login',
        headers: { 'content-type': 'application/json' },
        payload: '{"email": "admin@example.com", "password": ',
      });
      expectError(response, 400, 'INVALID_JSON');
    });
  });

  it('a rejected body does not count as a failed login (the account can still log in)', async () => {
    const { email, password } = await seedUser(app());
    for (let i = 0; i < 3; i += 1) {
      const response = await login(app(), { email, password: '' });
      expectError(response, 400, 'VALIDATION_FAILED');
    }
    await loginOk(app(), email, password);
  });
});
