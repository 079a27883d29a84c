// Access tokens: tampered, foreign, unsigned, expired and revoked tokens are refused with 401 INVALID_TOKEN
// (never 500); a missing credential is 401 UNAUTHORIZED; a revoked session stops working within a second,
// also on another instance that has the session cached.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { deriveKey } from '../../src/lib/crypto.js';
import { buildServer } from '../../src/server.js';
import { TEST_SECRET, testConfigOverrides, useTestApp } from '../helper.js';
import {
  bearer,
  decodeJwtPart,
  base64url,
  expectError,
  expectTokenRefusedSoon,
  handMadeJwt,
  identityOverrides,
  me,
  seedAndLogin,
} from './fixtures.js';

const nowS = () => Math.floor(Date.now() / 1000);

describe('access tokens', () => {
  const testApp = useTestApp(identityOverrides({ access_token_ttl_s: 30 }));
  const app = () => testApp().app;
  /** The key the server signs access tokens with (derived from the test SECRET_KEY the helper sets). */
  const serverKey = deriveKey(TEST_SECRET, 'access-token');

  it('a valid token works (control for the cases below)', async () => {
    const { tokens, user } = await seedAndLogin(app());
    const response = await me(app(), tokens.access_token);
    expect(response.statusCode).toBe(200);
    expect(response.json().id).toBe(user.id);
    const claims = decodeJwtPart(tokens.access_token.split('.')[1]!);
    expect(claims).toMatchObject({ sub: user.id, roles: ['member'] });
    expect(typeof claims.sid).toBe('string');
    expect(claims.exp).toBe((claims.iat as number) + 30);
    // A hand-made token with the server's own key is accepted: the refusals below are about the token.
    const handMade = handMadeJwt(
      { alg: 'HS256', typ: 'JWT' },
      { sub: user.id, sid: claims.sid, roles: ['member'], iat: nowS(), exp: nowS() + 60 },
      serverKey,
    );
    expect((await me(app(), handMade)).statusCode).toBe(200);
  });

  describe('tampered tokens → 401 INVALID_TOKEN', () => {
    it('signed with another secret', async () => {
      const { tokens } = await seedAndLogin(app());
      const claims = decodeJwtPart(tokens.access_token.split('.')[1]!);
      const forged = handMadeJwt(
        { alg: 'HS256', typ: 'JWT' },
        claims,
        deriveKey('another-secret-key-that-is-long-enough-987654', 'access-token'),
      );
      expectError(await me(app(), forged), 401, 'INVALID_TOKEN');
      // Also with the raw SECRET_KEY instead of the derived key.
      const rawKey = handMadeJwt({ alg: 'HS256', typ: 'JWT' }, claims, TEST_SECRET);
      expectError(await me(app(), rawKey), 401, 'INVALID_TOKEN');
    });

    it('alg: none (unsigned), with or without a trailing signature', async () => {
      const { tokens } = await seedAndLogin(app());
      const claims = decodeJwtPart(tokens.access_token.split('.')[1]!);
      const unsigned = handMadeJwt({ alg: 'none', typ: 'JWT' }, claims, null);
      expectError(await me(app(), unsigned), 401, 'INVALID_TOKEN');
      const noneWithSignature = `${unsigned}${tokens.access_token.split('.')[2]}`;
      expectError(await me(app(), noneWithSignature), 401, 'INVALID_TOKEN');
    });

    it('another algorithm with the right key (HS512) is refused: HS256 only', async () => {
      const { tokens } = await seedAndLogin(app());
      const claims = decodeJwtPart(tokens.access_token.split('.')[1]!);
      const hs512 = handMadeJwt({ alg: 'HS512', typ: 'JWT' }, claims, serverKey, 'sha512');
      expectError(await me(app(), hs512), 401, 'INVALID_TOKEN');
    });

    it('payload edited to claim admin, original signature kept', async () => {
      const { tokens } = await seedAndLogin(app());
      const [header, payload, signature] = tokens.access_token.split('.') as [string, string, string];
      const claims = decodeJwtPart(payload);
      const edited = `${header}.${base64url(JSON.stringify({ ...claims, roles: ['admin'] }))}.${signature}`;
      expectError(await me(app(), edited), 401, 'INVALID_TOKEN');
      const adminOnly = await app().inject({
        method: 'POST',
        url: '/api/v2/admin/users',
        headers: bearer(edited),
        payload: { email: 'smuggled@example.com', name: 'Smuggled', department: 'X' },
      });
      expectError(adminOnly, 401, 'INVALID_TOKEN');
      // The untouched token still works and is still a member's.
      const original = await me(app(), tokens.access_token);
      expect(original.json().roles).toEqual(['member']);
    });

    it('payload edited to another user, original signature kept', async () => {
      const victim = await seedAndLogin(app());
      const attacker = await seedAndLogin(app());
      const [header, payload, signature] = attacker.tokens.access_token.split('.') as [
        string,
        string,
        string,
      ];
      const claims = decodeJwtPart(payload);
      const edited = `${header}.${base64url(JSON.stringify({ ...claims, sub: victim.user.id }))}.${signature}`;
      expectError(await me(app(), edited), 401, 'INVALID_TOKEN');
    });

    it('validly signed but naming a session that does not exist, or another user’s session', async () => {
      const a = await seedAndLogin(app());
      const b = await seedAndLogin(app());
      const bClaims = decodeJwtPart(b.tokens.access_token.split('.')[1]!);
      const sign = (claims: Record<string, unknown>) =>
        handMadeJwt({ alg: 'HS256', typ: 'JWT' }, { iat: nowS(), exp: nowS() + 60, ...claims }, serverKey);
      expectError(
        await me(app(), sign({ sub: a.user.id, sid: 'no-such-session', roles: ['admin'] })),
        401,
        'INVALID_TOKEN',
      );
      // a's id with b's session: the session belongs to someone else.
      expectError(
        await me(app(), sign({ sub: a.user.id, sid: bClaims.sid, roles: [] })),
        401,
        'INVALID_TOKEN',
      );
      // Claims of the wrong type, or missing.
      expectError(await me(app(), sign({ sub: a.user.id, sid: 12345, roles: [] })), 401, 'INVALID_TOKEN');
      expectError(await me(app(), sign({ sub: a.user.id, roles: [] })), 401, 'INVALID_TOKEN');
      expectError(await me(app(), sign({ sid: bClaims.sid, roles: [] })), 401, 'INVALID_TOKEN');
      expectError(
        await me(app(), sign({ sub: { $ne: null }, sid: { $ne: null }, roles: [] })),
        401,
        'INVALID_TOKEN',
      );
    });

    it('expired (signed by the app itself with a past exp)', async () => {
      const { tokens, user } = await seedAndLogin(app());
      const { sid } = decodeJwtPart(tokens.access_token.split('.')[1]!);
      const expired = app().jwt.sign({ sub: user.id, sid, roles: ['member'], exp: nowS() - 5 });
      expectError(await me(app(), expired), 401, 'INVALID_TOKEN');
      // The same claims, not expired, are accepted: it is the expiry that is refused.
      const fresh = app().jwt.sign({ sub: user.id, sid, roles: ['member'], exp: nowS() + 60 });
      expect((await me(app(), fresh)).statusCode).toBe(200);
    });

    it('garbage strings and other schemes', async () => {
      const garbage = [
        'abc',
        'a.b.c',
        'eyJhbGciOiJIUzI1NiJ9.not-json.sig',
        '....',
        `${'x'.repeat(5000)}.${'y'.repeat(5000)}.z`,
        '%00%00',
      ];
      for (const token of garbage) {
        const response = await app().inject({
          method: 'GET',
          url: '/api/v2/users/me',
          headers: { authorization: `Bearer ${token}` },
        });
        expectError(response, 401, 'INVALID_TOKEN');
      }
      for (const header of [
        'Basic dXNlcjpwYXNzd29yZA==',
        'Bearer',
        'Bearer ',
        'Bearer a b',
        'Token abc',
        'bearer',
      ]) {
        const response = await app().inject({
          method: 'GET',
          url: '/api/v2/users/me',
          headers: { authorization: header },
        });
        expectError(response, 401, 'INVALID_TOKEN');
      }
    });
  });

  it('no Authorization header → 401 UNAUTHORIZED', async () => {
    const response = await app().inject({ method: 'GET', url: '/api/v2/users/me' });
    expectError(response, 401, 'UNAUTHORIZED');
  });

  it('a token of a logged-out session is refused within a second (401 INVALID_TOKEN)', async () => {
    const { tokens } = await seedAndLogin(app());
    expect((await me(app(), tokens.access_token)).statusCode).toBe(200); // warms any session cache
    const logout = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/logout',
      headers: bearer(tokens.access_token),
    });
    expect(logout.statusCode).toBe(204);
    expect(logout.body).toBe('');
    await expectTokenRefusedSoon(app(), tokens.access_token);
    // Logging out again with the dead token is refused too.
    const again = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/logout',
      headers: bearer(tokens.access_token),
    });
    expectError(again, 401, 'INVALID_TOKEN');
  });

  it('logging out one session leaves the user’s other sessions working', async () => {
    const first = await seedAndLogin(app());
    const second = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/login',
      payload: { email: first.email, password: first.password },
    });
    const secondToken = second.json().access_token as string;
    await app().inject({ method: 'POST', url: '/api/v2/auth/logout', headers: first.headers });
    await expectTokenRefusedSoon(app(), first.tokens.access_token);
    expect((await me(app(), secondToken)).statusCode).toBe(200);
  });

  it('GET /auth/session reports the caller’s session', async () => {
    const { tokens, user } = await seedAndLogin(app());
    const { sid } = decodeJwtPart(tokens.access_token.split('.')[1]!);
    const response = await app().inject({
      method: 'GET',
      url: '/api/v2/auth/session',
      headers: bearer(tokens.access_token),
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ user_id: user.id, session_id: sid, roles: ['member'] });
  });

  it('a revocation reaches another instance on the same database within a second', async () => {
    // A second server on the same database, as in a multi-instance deployment: it caches session checks
    // on its own, so it only learns of the logout from the database.
    const { overrides, logDir } = testConfigOverrides({
      database: { name: testApp().databaseName },
      auth: { access_token_ttl_s: 30 },
    });
    const other = await buildServer(loadConfig({ env: {}, cwd: logDir, overrides }));
    try {
      const { tokens } = await seedAndLogin(app());
      expect((await me(other.app, tokens.access_token)).statusCode).toBe(200); // cached on the other one
      const logout = await app().inject({
        method: 'POST',
        url: '/api/v2/auth/logout',
        headers: bearer(tokens.access_token),
      });
      expect(logout.statusCode).toBe(204);
      await expectTokenRefusedSoon(other.app, tokens.access_token);
    } finally {
      await other.close(); // not the helper's close: the database belongs to the first app
      fs.rmSync(logDir, { recursive: true, force: true });
    }
  });
});
