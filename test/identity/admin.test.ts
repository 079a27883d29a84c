// Account administration: POST /admin/users (with a password, or with a one-time set-password token),
// PATCH /admin/users/:userId (roles, department, team, status), disabling, the last-admin rule, and
// DELETE /admin/users/:userId/sessions.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  expectError,
  expectPublicUser,
  expectTokenRefusedSoon,
  expectValidation,
  identityOverrides,
  login,
  loginOk,
  me,
  seedAndLogin,
  seedUser,
  strongPassword,
  uniqueEmail,
  userExists,
} from './fixtures.js';

describe('admin users', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;
  let adminToken: string;
  const asAdmin = () => bearer(adminToken);

  beforeAll(async () => {
    adminToken = (await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD)).access_token;
  });

  const createUser = (payload: Record<string, unknown>, headers = asAdmin()) =>
    app().inject({ method: 'POST', url: '/api/v2/admin/users', headers, payload });
  const patchUser = (reference: string, payload: Record<string, unknown>, headers = asAdmin()) =>
    app().inject({
      method: 'PATCH',
      url: `/api/v2/admin/users/${encodeURIComponent(reference)}`,
      headers,
      payload,
    });
  const setPassword = (token: string, password: string) =>
    app().inject({ method: 'POST', url: '/api/v2/auth/set-password', payload: { token, password } });

  describe('POST /admin/users', () => {
    it('creates a user with a password: 201, the user, no token; they can log in', async () => {
      const email = uniqueEmail('created');
      const password = strongPassword();
      const response = await createUser({
        email,
        name: '  Nora Newhire ',
        department: 'Finance',
        team: 'Payables',
        designation: 'Analyst',
        roles: ['moderator'],
        password,
      });
      expect(response.statusCode).toBe(201);
      const body = response.json();
      expect(body).toMatchObject({
        email,
        name: 'Nora Newhire',
        department: 'Finance',
        team: 'Payables',
        designation: 'Analyst',
        roles: ['moderator', 'member'],
        status: 'active',
        last_seen_at: null,
      });
      expect(body).not.toHaveProperty('set_password_token');
      expectPublicUser(body);
      expect(response.body).not.toContain(password);
      const session = await loginOk(app(), email, password);
      expect(session.user.id).toBe(body.id);
    });

    it('without a password returns a set_password_token that works once', async () => {
      const email = uniqueEmail('tokened');
      const response = await createUser({ email, name: 'Tom Token', department: 'Ops' });
      expect(response.statusCode).toBe(201);
      const { set_password_token: token, id } = response.json();
      expect(typeof token).toBe('string');
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(response.json().roles).toEqual(['member']);
      // No password yet: cannot log in.
      expectError(
        await login(app(), { email, password: 'Anything-Goes-Here-1' }),
        401,
        'INVALID_CREDENTIALS',
      );

      // A weak choice is refused without burning the token.
      expectValidation(await setPassword(token, 'short'), 'password');
      expectValidation(await setPassword(token, 'Tom Token is my name!'), 'password');

      const password = strongPassword();
      const first = await setPassword(token, password);
      expect(first.statusCode).toBe(204);
      expect((await loginOk(app(), email, password)).user.id).toBe(id);

      const second = await setPassword(token, strongPassword());
      expectError(second, 400, 'INVALID_SET_PASSWORD_TOKEN');
      // The second attempt changed nothing.
      expect((await login(app(), { email, password })).statusCode).toBe(200);
    });

    it('set-password refuses unknown tokens and bad bodies', async () => {
      expectError(await setPassword('not-a-real-token', strongPassword()), 400, 'INVALID_SET_PASSWORD_TOKEN');
      const bad = (payload: Record<string, unknown>) =>
        app().inject({ method: 'POST', url: '/api/v2/auth/set-password', payload });
      expectValidation(await bad({ password: strongPassword() }), 'token');
      expectValidation(await bad({ token: 'x' }), 'password');
      expectValidation(await bad({ token: 'x'.repeat(201), password: strongPassword() }), 'token');
      expectValidation(await bad({ token: 'x', password: strongPassword(), email: 'a@b.co' }), 'email');
    });

    it('a duplicate email in any case → 409 EMAIL_TAKEN, and nothing new is stored', async () => {
      const email = uniqueEmail('dup');
      expect((await createUser({ email, name: 'First Dup', department: 'A' })).statusCode).toBe(201);
      for (const variant of [email, email.toUpperCase(), ` ${email.replace(/^d/, 'D')} `]) {
        const response = await createUser({ email: variant, name: 'Second Dup', department: 'B' });
        expectError(response, 409, 'EMAIL_TAKEN');
      }
      const found = await app().inject({
        method: 'GET',
        url: `/api/v2/users/${encodeURIComponent(email)}`,
        headers: asAdmin(),
      });
      expect(found.json()).toMatchObject({ name: 'First Dup', department: 'A' });
      const second = await app().inject({
        method: 'GET',
        url: '/api/v2/users',
        query: { q: 'dup' },
        headers: asAdmin(),
      });
      expect(
        second.json().users.filter((u: { email: string }) => u.email.toLowerCase() === email),
      ).toHaveLength(1);
    });

    const rejected: [string, (email: string) => Record<string, unknown>, string][] = [
      [
        'a weak password',
        (email) => ({ email, name: 'Weak Pw', department: 'A', password: 'password' }),
        'password',
      ],
      [
        'a common password',
        (email) => ({ email, name: 'Common Pw', department: 'A', password: '123456789012' }),
        'password',
      ],
      ['a malformed email', () => ({ email: 'not-an-email', name: 'Bad Email', department: 'A' }), 'email'],
      [
        'an email with spaces',
        () => ({ email: 'a b@example.com', name: 'Bad Email', department: 'A' }),
        'email',
      ],
      [
        'an over-long email',
        () => ({ email: `${'a'.repeat(60)}@${'b'.repeat(190)}.com`, name: 'Long', department: 'A' }),
        'email',
      ],
      ['a missing name', (email) => ({ email, department: 'A' }), 'name'],
      ['a missing department', (email) => ({ email, name: 'No Dept' }), 'department'],
      [
        'an unknown role',
        (email) => ({ email, name: 'Role', department: 'A', roles: ['superuser'] }),
        'roles',
      ],
      ['roles as a string', (email) => ({ email, name: 'Role', department: 'A', roles: 'admin' }), 'roles'],
      ['an over-long name', (email) => ({ email, name: 'n'.repeat(101), department: 'A' }), 'name'],
      [
        'an unknown field',
        (email) => ({ email, name: 'Extra', department: 'A', status: 'disabled' }),
        'status',
      ],
      [
        'a password hash',
        (email) => ({ email, name: 'Hash', department: 'A', password_hash: 'x' }),
        'password_hash',
      ],
    ];
    it.each(rejected)('%s → 400 VALIDATION_FAILED, nothing stored', async (_what, make, field) => {
      const email = uniqueEmail('rejected');
      const payload = make(email);
      const response = await createUser(payload);
      if (field) expectValidation(response, field);
      else expectError(response, 400, 'VALIDATION_FAILED');
      expect(await userExists(app(), adminToken, email)).toBe(false);
      if (typeof payload.email === 'string' && payload.email.includes('@') && payload.email.length <= 254)
        expect(await userExists(app(), adminToken, payload.email.trim())).toBe(false);
    });

    it('a member or moderator → 403 FORBIDDEN, nothing stored', async () => {
      for (const roles of [['member'], ['moderator']] as const) {
        const { headers } = await seedAndLogin(app(), { roles: [...roles] });
        const email = uniqueEmail('forbidden');
        const response = await createUser(
          { email, name: 'Sneaky', department: 'A', roles: ['admin'] },
          headers,
        );
        expectError(response, 403, 'FORBIDDEN');
        expect(await userExists(app(), adminToken, email)).toBe(false);
      }
    });
  });

  describe('PATCH /admin/users/:userId', () => {
    it('changes roles, department, team, designation and name', async () => {
      const { user, headers } = await seedAndLogin(app(), { department: 'Sales', team: 'East' });
      const response = await patchUser(user.id, {
        roles: ['moderator'],
        department: 'Support',
        team: 'Tier 2',
        designation: 'Lead',
        name: 'Pat Patched',
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        id: user.id,
        roles: ['moderator', 'member'],
        department: 'Support',
        team: 'Tier 2',
        designation: 'Lead',
        name: 'Pat Patched',
      });
      // The user's own session sees the new roles at once (same token).
      const session = await app().inject({ method: 'GET', url: '/api/v2/auth/session', headers });
      expect(session.json().roles).toEqual(['moderator', 'member']);

      const cleared = await patchUser(user.email, { team: null, roles: ['member'] });
      expect(cleared.statusCode).toBe(200);
      expect(cleared.json()).toMatchObject({ team: null, roles: ['member'] });
    });

    it('promotion to admin gives admin powers on the existing session', async () => {
      const { user, headers } = await seedAndLogin(app());
      expectError(
        await createUser({ email: uniqueEmail('p'), name: 'P', department: 'A' }, headers),
        403,
        'FORBIDDEN',
      );
      expect((await patchUser(user.id, { roles: ['admin'] })).statusCode).toBe(200);
      const email = uniqueEmail('promoted');
      const response = await createUser({ email, name: 'By Promoted', department: 'A' }, headers);
      expect(response.statusCode).toBe(201);
      // And demotion takes the powers away again.
      expect((await patchUser(user.id, { roles: ['member'] })).statusCode).toBe(200);
      expectError(
        await createUser({ email: uniqueEmail('q'), name: 'Q', department: 'A' }, headers),
        403,
        'FORBIDDEN',
      );
    });

    it('disabling signs the user out everywhere and stops logins; enabling lets them back in', async () => {
      const { user, email, password, tokens } = await seedAndLogin(app());
      const second = await loginOk(app(), email, password);
      expect((await me(app(), tokens.access_token)).statusCode).toBe(200);

      const disable = await patchUser(user.id, { disabled: true });
      expect(disable.statusCode).toBe(200);
      expect(disable.json().status).toBe('disabled');

      await expectTokenRefusedSoon(app(), tokens.access_token);
      await expectTokenRefusedSoon(app(), second.access_token);
      const refresh = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/refresh',
        payload: { refresh_token: second.refresh_token },
      });
      expectError(refresh, 401, 'INVALID_TOKEN');
      expectError(await login(app(), { email, password }), 403, 'ACCOUNT_DISABLED');

      const enable = await patchUser(user.id, { status: 'active' });
      expect(enable.statusCode).toBe(200);
      expect(enable.json().status).toBe('active');
      // Old sessions stay revoked; a new login works.
      expectError(await me(app(), tokens.access_token), 401, 'INVALID_TOKEN');
      await loginOk(app(), email, password);
    });

    it('status: "disabled" works like disabled: true', async () => {
      const { user, email, password, tokens } = await seedAndLogin(app());
      const response = await patchUser(user.id, { status: 'disabled' });
      expect(response.json().status).toBe('disabled');
      await expectTokenRefusedSoon(app(), tokens.access_token);
      expectError(await login(app(), { email, password }), 403, 'ACCOUNT_DISABLED');
    });

    const badPatches: [string, Record<string, unknown>, string][] = [
      ['an empty body', {}, ''],
      ['empty roles', { roles: [] }, 'roles'],
      ['an unknown role', { roles: ['root'] }, 'roles'],
      ['an unknown status', { status: 'banned' }, 'status'],
      ['status and disabled together', { status: 'active', disabled: true }, ''],
      ['disabled as a string', { disabled: 'yes' }, 'disabled'],
      ['an email change', { email: 'new@example.com' }, 'email'],
      ['an empty department', { department: ' ' }, 'department'],
      ['a password', { password: strongPassword() }, 'password'],
    ];
    it.each(badPatches)('%s → 400 VALIDATION_FAILED, user unchanged', async (_what, payload, field) => {
      const { user } = await seedUser(app(), { department: 'Stable', roles: ['member'] });
      const response = await patchUser(user.id, payload);
      if (field) expectValidation(response, field);
      else expectError(response, 400, 'VALIDATION_FAILED');
      const after = await app().inject({
        method: 'GET',
        url: `/api/v2/users/${user.id}`,
        headers: asAdmin(),
      });
      expect(after.json()).toEqual(user);
    });

    it('an unknown user → 404 USER_NOT_FOUND', async () => {
      expectError(await patchUser('ffffffffffffffffffffffff', { department: 'X' }), 404, 'USER_NOT_FOUND');
      expectError(await patchUser('ghost@example.com', { department: 'X' }), 404, 'USER_NOT_FOUND');
    });

    it('a member → 403 FORBIDDEN and the target is unchanged', async () => {
      const { user } = await seedUser(app(), { department: 'Stable' });
      const { headers, user: self } = await seedAndLogin(app());
      expectError(await patchUser(user.id, { department: 'Hacked' }, headers), 403, 'FORBIDDEN');
      expectError(await patchUser(self.id, { roles: ['admin'] }, headers), 403, 'FORBIDDEN');
      const after = await app().inject({
        method: 'GET',
        url: `/api/v2/users/${user.id}`,
        headers: asAdmin(),
      });
      expect(after.json().department).toBe('Stable');
      expect((await me(app(), headers.authorization.slice(7))).json().roles).toEqual(['member']);
    });
  });

  describe('DELETE /admin/users/:userId/sessions', () => {
    it('revokes every session of the user and says how many', async () => {
      const { user, email, password, tokens } = await seedAndLogin(app());
      const second = await loginOk(app(), email, password);
      const other = await seedAndLogin(app());
      const response = await app().inject({
        method: 'DELETE',
        url: `/api/v2/admin/users/${user.id}/sessions`,
        headers: asAdmin(),
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ revoked: 2 });
      await expectTokenRefusedSoon(app(), tokens.access_token);
      await expectTokenRefusedSoon(app(), second.access_token);
      // Someone else's session is untouched, and the user may log in again.
      expect((await me(app(), other.tokens.access_token)).statusCode).toBe(200);
      await loginOk(app(), email, password);

      const again = await app().inject({
        method: 'DELETE',
        url: `/api/v2/admin/users/${encodeURIComponent(email)}/sessions`,
        headers: asAdmin(),
      });
      expect(again.json()).toEqual({ revoked: 1 });
    });

    it('an unknown user → 404 USER_NOT_FOUND', async () => {
      const response = await app().inject({
        method: 'DELETE',
        url: '/api/v2/admin/users/ffffffffffffffffffffffff/sessions',
        headers: asAdmin(),
      });
      expectError(response, 404, 'USER_NOT_FOUND');
    });

    it('a member or moderator cannot sign other people out (403 FORBIDDEN; their sessions survive)', async () => {
      const victim = await seedAndLogin(app());
      for (const roles of [['member'], ['moderator']] as const) {
        const { headers } = await seedAndLogin(app(), { roles: [...roles] });
        const response = await app().inject({
          method: 'DELETE',
          url: `/api/v2/admin/users/${victim.user.id}/sessions`,
          headers,
        });
        expectError(response, 403, 'FORBIDDEN');
      }
      expect((await me(app(), victim.tokens.access_token)).statusCode).toBe(200);
    });
  });
});

describe('the last active admin', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('cannot demote or disable themselves (400), and keeps admin powers', async () => {
    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const headers = bearer(admin.access_token);
    const patch = (payload: Record<string, unknown>) =>
      app().inject({ method: 'PATCH', url: `/api/v2/admin/users/${admin.user.id}`, headers, payload });

    expectValidation(await patch({ roles: ['member'] }), 'roles');
    expectValidation(await patch({ roles: ['moderator'] }), 'roles');
    expectValidation(await patch({ disabled: true }), 'status');
    expectValidation(await patch({ status: 'disabled' }), 'status');

    const self = await me(app(), admin.access_token);
    expect(self.statusCode).toBe(200);
    expect(self.json()).toMatchObject({ roles: ['admin', 'member'], status: 'active' });
    expect((await login(app(), { email: ADMIN_EMAIL, password: ADMIN_PASSWORD })).statusCode).toBe(200);
  });

  it('with a second admin, one of them may step down', async () => {
    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const headers = bearer(admin.access_token);
    const second = await seedAndLogin(app(), { roles: ['admin'] });
    const demote = await app().inject({
      method: 'PATCH',
      url: `/api/v2/admin/users/${second.user.id}`,
      headers,
      payload: { roles: ['member'] },
    });
    expect(demote.statusCode).toBe(200);
    expect(demote.json().roles).toEqual(['member']);
    // Now the first admin is the last one again.
    const selfDemote = await app().inject({
      method: 'PATCH',
      url: `/api/v2/admin/users/${admin.user.id}`,
      headers,
      payload: { roles: ['member'] },
    });
    expectValidation(selfDemote, 'roles');
  });
});
