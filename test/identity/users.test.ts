// The caller's profile (GET/PATCH /users/me), password change (POST /users/me/password), the staff
// directory (GET /users: prefix search, department filter, cursor paging) and GET /users/:userId.
import { beforeAll, describe, expect, it } from 'vitest';
import type { PublicUser } from '../../src/services/users.js';
import { useTestApp } from '../helper.js';
import {
  bearer,
  directory,
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
  unique,
  uniqueEmail,
} from './fixtures.js';

describe('users', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  describe('GET/PATCH /users/me', () => {
    it('returns my profile without credentials', async () => {
      const { headers, user, email } = await seedAndLogin(app(), {
        name: 'Mia Profile',
        department: 'Design',
        team: 'Web',
        designation: 'Designer',
      });
      const response = await app().inject({ method: 'GET', url: '/api/v2/users/me', headers });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body).toMatchObject({
        id: user.id,
        email,
        name: 'Mia Profile',
        department: 'Design',
        team: 'Web',
        designation: 'Designer',
        roles: ['member'],
        status: 'active',
      });
      expectPublicUser(body);
    });

    it('changes name and designation (trimmed); the directory sees the new name', async () => {
      const { headers, user } = await seedAndLogin(app(), { name: 'Old Name' });
      const newName = `Renamed ${unique('Zq')}`;
      const patch = await app().inject({
        method: 'PATCH',
        url: '/api/v2/users/me',
        headers,
        payload: { name: `  ${newName}  `, designation: 'Staff Engineer' },
      });
      expect(patch.statusCode).toBe(200);
      expect(patch.json()).toMatchObject({ id: user.id, name: newName, designation: 'Staff Engineer' });
      expect(Date.parse(patch.json().updated_at)).toBeGreaterThanOrEqual(Date.parse(user.updated_at));

      const again = await app().inject({ method: 'GET', url: '/api/v2/users/me', headers });
      expect(again.json()).toMatchObject({ name: newName, designation: 'Staff Engineer' });
      const found = await directory(app(), headers.authorization.slice(7), { q: newName.split(' ')[1]! });
      expect(found.users.map((u) => u.id)).toEqual([user.id]);

      const cleared = await app().inject({
        method: 'PATCH',
        url: '/api/v2/users/me',
        headers,
        payload: { designation: null },
      });
      expect(cleared.statusCode).toBe(200);
      expect(cleared.json().designation).toBeNull();
    });

    const refused: [string, Record<string, unknown>, string][] = [
      ['roles', { roles: ['admin'] }, 'roles'],
      ['email', { email: 'someone-else@example.com' }, 'email'],
      ['department', { department: 'Executive' }, 'department'],
      ['status', { status: 'active' }, 'status'],
      ['an empty body', {}, ''],
      ['an empty name', { name: '   ' }, 'name'],
      ['an over-long name', { name: 'n'.repeat(101) }, 'name'],
      ['a name with control characters', { name: 'Bad\u0000Name' }, 'name'],
      ['a number as designation', { designation: 7 }, 'designation'],
    ];
    it.each(refused)(
      'refuses %s with 400 VALIDATION_FAILED and changes nothing',
      async (_what, payload, field) => {
        const { headers } = await seedAndLogin(app(), { name: 'Fixed Person', department: 'Ops' });
        const before = (await app().inject({ method: 'GET', url: '/api/v2/users/me', headers })).json();
        const response = await app().inject({ method: 'PATCH', url: '/api/v2/users/me', headers, payload });
        if (field) expectValidation(response, field);
        else expectError(response, 400, 'VALIDATION_FAILED');
        const after = (await app().inject({ method: 'GET', url: '/api/v2/users/me', headers })).json();
        expect(after).toEqual(before);
        expect(after.roles).toEqual(['member']);
      },
    );
  });

  describe('POST /users/me/password', () => {
    const change = (token: string, payload: Record<string, unknown>) =>
      app().inject({ method: 'POST', url: '/api/v2/users/me/password', headers: bearer(token), payload });

    it('a wrong current password → 403 WRONG_PASSWORD, and the password is unchanged', async () => {
      const { tokens, email, password } = await seedAndLogin(app());
      const next = strongPassword();
      const response = await change(tokens.access_token, {
        current_password: 'Not-My-Password-123',
        new_password: next,
      });
      expectError(response, 403, 'WRONG_PASSWORD');
      expect((await login(app(), { email, password })).statusCode).toBe(200);
      expectError(await login(app(), { email, password: next }), 401, 'INVALID_CREDENTIALS');
      // The session survives a wrong guess.
      expect((await me(app(), tokens.access_token)).statusCode).toBe(200);
    });

    const weak: [string, (email: string, name: string) => string][] = [
      ['too short', () => 'Sh0rt-pw'],
      ['a common password', () => 'qwerty123456'],
      ['containing the email’s name', (email) => `${email.split('@')[0]}-Extra-Long-9`],
      ['containing the user’s name', (_email, name) => `xx${name}xx-Long-Enough`],
      ['over-long', () => 'p'.repeat(257)],
    ];
    it.each(weak)(
      'a weak new password (%s) → 400 naming new_password, nothing stored',
      async (_what, make) => {
        const name = `Wendy ${unique('W')}`;
        const { tokens, email, password } = await seedAndLogin(app(), { name });
        const next = make(email, name);
        const response = await change(tokens.access_token, {
          current_password: password,
          new_password: next,
        });
        expectValidation(response, 'new_password');
        expect((await login(app(), { email, password })).statusCode).toBe(200);
        expectError(await login(app(), { email, password: next.slice(0, 256) }), 401, 'INVALID_CREDENTIALS');
      },
    );

    it('bad bodies → 400 VALIDATION_FAILED', async () => {
      const { tokens, email, password } = await seedAndLogin(app());
      expectValidation(
        await change(tokens.access_token, { new_password: strongPassword() }),
        'current_password',
      );
      expectValidation(await change(tokens.access_token, { current_password: password }), 'new_password');
      expectValidation(
        await change(tokens.access_token, { current_password: password, new_password: 12345678901234 }),
        'new_password',
      );
      expectValidation(
        await change(tokens.access_token, {
          current_password: password,
          new_password: strongPassword(),
          user_id: 'someone',
        }),
        'user_id',
      );
      expect((await login(app(), { email, password })).statusCode).toBe(200);
    });

    it('success: 204, other sessions are signed out, this one keeps working, the new password logs in', async () => {
      const { tokens: current, email, password } = await seedAndLogin(app());
      const other = await loginOk(app(), email, password);
      expect((await me(app(), other.access_token)).statusCode).toBe(200);
      const next = strongPassword();

      const response = await change(current.access_token, { current_password: password, new_password: next });
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');

      await expectTokenRefusedSoon(app(), other.access_token);
      const otherRefresh = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/refresh',
        payload: { refresh_token: other.refresh_token },
      });
      expectError(otherRefresh, 401, 'INVALID_TOKEN');

      expect((await me(app(), current.access_token)).statusCode).toBe(200);
      const refreshed = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/refresh',
        payload: { refresh_token: current.refresh_token },
      });
      expect(refreshed.statusCode).toBe(200);

      expectError(await login(app(), { email, password }), 401, 'INVALID_CREDENTIALS');
      await loginOk(app(), email, next);
    });
  });

  describe('GET /users (directory)', () => {
    const dept = `Dir${unique('D')}`;
    const other = `Oth${unique('D')}`;
    let token: string;
    const seeded: Record<string, PublicUser> = {};

    beforeAll(async () => {
      const people: [string, string, string][] = [
        ['zoe', 'Zoë Quartzfield', `zquartz.${unique('e')}@example.com`],
        ['olaf', 'Olaf Quartermain', `olaf.q.${unique('e')}@example.com`],
        ['kiran', 'Kiran Patelworth', `kpatelworth${unique('e')}@example.com`],
        ['anna', 'Anna Bellweather', `abell${unique('e')}@example.com`],
        ['anna2', 'Anna Bellweather', `abell.two${unique('e')}@example.com`],
        ['ben', 'Ben Bellweather', `bbell${unique('e')}@example.com`],
        ['cara', 'Cara Bellweather', `cbell${unique('e')}@example.com`],
      ];
      for (const [key, name, email] of people) {
        seeded[key] = (await seedUser(app(), { name, email, department: dept, password: null })).user;
      }
      seeded.otherDept = (
        await seedUser(app(), { name: 'Zoltan Quartzfield', department: other, password: null })
      ).user;
      token = (await seedAndLogin(app(), { department: dept })).tokens.access_token;
    });

    const ids = (users: PublicUser[]) => users.map((user) => user.id);

    it('finds by a prefix of a word of the name, case- and accent-insensitively', async () => {
      expect(ids((await directory(app(), token, { q: 'quartzf' })).users).sort()).toEqual(
        [seeded.zoe!.id, seeded.otherDept!.id].sort(),
      );
      expect(ids((await directory(app(), token, { q: 'zoe', department: dept })).users)).toEqual([
        seeded.zoe!.id,
      ]);
      expect(ids((await directory(app(), token, { q: 'ZOË', department: dept })).users)).toEqual([
        seeded.zoe!.id,
      ]);
      expect(ids((await directory(app(), token, { q: 'Quarterm' })).users)).toEqual([seeded.olaf!.id]);
      const result = await directory(app(), token, { q: 'zoe' });
      for (const user of result.users) expectPublicUser(user as unknown as Record<string, unknown>);
    });

    it('a search with no words in it (only punctuation) finds nobody rather than everybody', async () => {
      for (const q of ['.', '(', '--']) {
        const result = await directory(app(), token, { q });
        expect(result.users).toEqual([]);
        expect(result.has_more).toBe(false);
      }
    });

    it('finds by a prefix of the email', async () => {
      expect(ids((await directory(app(), token, { q: 'kpatelwo' })).users)).toEqual([seeded.kiran!.id]);
      const email = seeded.kiran!.email;
      expect(
        ids((await directory(app(), token, { q: email.slice(0, email.indexOf('@') + 3) })).users),
      ).toEqual([seeded.kiran!.id]);
      expect(ids((await directory(app(), token, { q: email.toUpperCase() })).users)).toEqual([
        seeded.kiran!.id,
      ]);
    });

    it('a prefix that matches nobody returns an empty page; regex characters are plain text', async () => {
      const kiranLocal = seeded.kiran!.email.split('@')[0]!;
      // As a regex, "k.atelworth…@" would match Kiran's email; as text it matches nobody.
      const dotted = `k.${kiranLocal.slice(2)}@`;
      for (const q of ['zzznobody', dotted]) {
        const page = await directory(app(), token, { q });
        expect(page, q).toEqual({ users: [], next_cursor: null, has_more: false });
      }
      // Punctuation alone is no error.
      for (const q of ['.*', '(', '[x', '$where', '\\']) {
        const response = await app().inject({
          method: 'GET',
          url: '/api/v2/users',
          query: { q },
          headers: bearer(token),
        });
        expect(response.statusCode, q).toBe(200);
        expect(Array.isArray(response.json().users)).toBe(true);
      }
    });

    it('filters by department', async () => {
      const page = await directory(app(), token, { department: other });
      expect(ids(page.users)).toEqual([seeded.otherDept!.id]);
      expect(page.users.every((user) => user.department === other)).toBe(true);
      const none = await directory(app(), token, { department: `${other}-none` });
      expect(none.users).toEqual([]);
    });

    it('pages with a cursor: every user once, sorted by name, no duplicates or gaps', async () => {
      const all = await directory(app(), token, { department: dept, limit: '200' });
      expect(all.has_more).toBe(false);
      expect(all.users.length).toBe(8); // seven seeded plus the caller
      const names = all.users.map((user) => user.name.toLowerCase());
      expect(names).toEqual([...names].sort());

      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: Record<string, string> = { department: dept, limit: '3' };
        if (cursor) query.cursor = cursor;
        const page = await directory(app(), token, query);
        expect(page.users.length).toBeLessThanOrEqual(3);
        expect(page.has_more).toBe(page.next_cursor !== null);
        seen.push(...ids(page.users));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(pages).toBe(3);
      expect(seen).toEqual(ids(all.users));
      expect(new Set(seen).size).toBe(seen.length);

      // Paging within a search.
      const first = await directory(app(), token, { q: 'bellweather', limit: '2' });
      expect(first.has_more).toBe(true);
      const second = await directory(app(), token, {
        q: 'bellweather',
        limit: '2',
        cursor: first.next_cursor!,
      });
      expect(second.has_more).toBe(false);
      expect(second.next_cursor).toBeNull();
      expect([...ids(first.users), ...ids(second.users)].sort()).toEqual(
        [seeded.anna!.id, seeded.anna2!.id, seeded.ben!.id, seeded.cara!.id].sort(),
      );
    });

    const badQueries: [string, Record<string, string>, string][] = [
      ['limit 0', { limit: '0' }, 'limit'],
      ['limit 201', { limit: '201' }, 'limit'],
      ['limit -1', { limit: '-1' }, 'limit'],
      ['limit 1.5', { limit: '1.5' }, 'limit'],
      ['limit abc', { limit: 'abc' }, 'limit'],
      ['a forged cursor', { cursor: 'bm90LWEtY3Vyc29y' }, 'cursor'],
      ['a cursor that is not base64 JSON', { cursor: '!!!' }, 'cursor'],
      ['an over-long q', { q: 'q'.repeat(101) }, 'q'],
      ['an unknown parameter', { role: 'admin' }, 'role'],
    ];
    it.each(badQueries)('%s → 400 VALIDATION_FAILED', async (_what, query, field) => {
      const response = await app().inject({
        method: 'GET',
        url: '/api/v2/users',
        query,
        headers: bearer(token),
      });
      if (field) expectValidation(response, field);
      else expectError(response, 400, 'VALIDATION_FAILED');
    });

    it('limit bounds 1 and 200 are accepted', async () => {
      expect((await directory(app(), token, { limit: '1' })).users).toHaveLength(1);
      expect((await directory(app(), token, { limit: '200' })).users.length).toBeGreaterThan(1);
    });
  });

  describe('GET /users/:userId', () => {
    it('by id and by email in any case; unknown → 404 USER_NOT_FOUND', async () => {
      const { tokens } = await seedAndLogin(app());
      const target = await seedUser(app(), { email: uniqueEmail('Target'), name: 'Tara Target' });
      const headers = bearer(tokens.access_token);
      for (const reference of [
        target.user.id,
        target.email,
        target.email.toUpperCase(),
        target.email.toLowerCase(),
      ]) {
        const response = await app().inject({
          method: 'GET',
          url: `/api/v2/users/${encodeURIComponent(reference)}`,
          headers,
        });
        expect(response.statusCode, reference).toBe(200);
        expect(response.json()).toMatchObject({ id: target.user.id, name: 'Tara Target' });
        expectPublicUser(response.json());
      }
      for (const reference of ['ffffffffffffffffffffffff', 'nobody@example.com', 'not-an-id', 'me2']) {
        const response = await app().inject({
          method: 'GET',
          url: `/api/v2/users/${encodeURIComponent(reference)}`,
          headers,
        });
        expectError(response, 404, 'USER_NOT_FOUND');
      }
    });

    it('a long but valid email (over 100 characters) is found too', async () => {
      const { headers } = await seedAndLogin(app());
      const email = `long.person.${unique('l')}@${'d'.repeat(60)}.${'e'.repeat(40)}.example.com`;
      expect(email.length).toBeGreaterThan(120);
      const target = await seedUser(app(), { email, name: 'Lorna Longmail' });
      const byId = await app().inject({ method: 'GET', url: `/api/v2/users/${target.user.id}`, headers });
      expect(byId.statusCode).toBe(200);
      const byEmail = await app().inject({
        method: 'GET',
        url: `/api/v2/users/${encodeURIComponent(email)}`,
        headers,
      });
      expect(byEmail.statusCode, byEmail.body).toBe(200);
      expect(byEmail.json().id).toBe(target.user.id);
    });

    it('a reference longer than any email (255 characters) → 400 VALIDATION_FAILED naming userId', async () => {
      const { headers } = await seedAndLogin(app());
      const response = await app().inject({
        method: 'GET',
        url: `/api/v2/users/${'a'.repeat(255)}`,
        headers,
      });
      expectValidation(response, 'userId');
    });
  });
});
