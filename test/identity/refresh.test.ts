// POST /api/v2/auth/refresh: rotation, reuse detection (a replayed refresh token revokes the whole session),
// refresh after logout, and malformed tokens.
import { describe, expect, it } from 'vitest';
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
  loginOk,
  me,
  seedAndLogin,
  type InjectResponse,
  type TokenPairBody,
} from './fixtures.js';

describe('POST /auth/refresh', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;
  const refresh = (payload: unknown): Promise<InjectResponse> =>
    app().inject({ method: 'POST', url: '/api/v2/auth/refresh', payload: payload as object });

  it('rotates: a new pair for the same session and user, and the new refresh token works next', async () => {
    const { tokens, user } = await seedAndLogin(app());
    const first = await refresh({ refresh_token: tokens.refresh_token });
    expect(first.statusCode).toBe(200);
    const pair = first.json<TokenPairBody>();
    expect(pair.token_type).toBe('Bearer');
    expect(pair.expires_in).toBeGreaterThan(0);
    expect(pair.refresh_token).not.toBe(tokens.refresh_token);
    expect(pair.user.id).toBe(user.id);
    expectPublicUser(pair.user as unknown as Record<string, unknown>);
    expect((await me(app(), pair.access_token)).statusCode).toBe(200);

    const second = await refresh({ refresh_token: pair.refresh_token });
    expect(second.statusCode).toBe(200);
    const third = second.json<TokenPairBody>();
    expect(third.refresh_token).not.toBe(pair.refresh_token);
    expect((await me(app(), third.access_token)).statusCode).toBe(200);
  });

  it('reusing an old refresh token fails and revokes the whole session (theft detection)', async () => {
    const { tokens } = await seedAndLogin(app());
    const rotated = await refresh({ refresh_token: tokens.refresh_token });
    expect(rotated.statusCode).toBe(200);
    const pair = rotated.json<TokenPairBody>();
    expect((await me(app(), pair.access_token)).statusCode).toBe(200);

    const replay = await refresh({ refresh_token: tokens.refresh_token });
    expectError(replay, 401, 'INVALID_TOKEN');
    expect(replay.body).not.toContain('access_token');

    // Whoever holds the newer pair is signed out too: the session is gone.
    expectError(await refresh({ refresh_token: pair.refresh_token }), 401, 'INVALID_TOKEN');
    await expectTokenRefusedSoon(app(), pair.access_token);
    await expectTokenRefusedSoon(app(), tokens.access_token);
  });

  it('a token from two rotations ago is recognised as reuse too', async () => {
    const { tokens } = await seedAndLogin(app());
    const second = (await refresh({ refresh_token: tokens.refresh_token })).json<TokenPairBody>();
    const third = (await refresh({ refresh_token: second.refresh_token })).json<TokenPairBody>();
    expectError(await refresh({ refresh_token: tokens.refresh_token }), 401, 'INVALID_TOKEN');
    expectError(await refresh({ refresh_token: third.refresh_token }), 401, 'INVALID_TOKEN');
    await expectTokenRefusedSoon(app(), third.access_token);
  });

  it('reuse detection only ends that session: the user’s other sessions keep working', async () => {
    const a = await seedAndLogin(app());
    const other = await loginOk(app(), a.email, a.password);
    await refresh({ refresh_token: a.tokens.refresh_token });
    expectError(await refresh({ refresh_token: a.tokens.refresh_token }), 401, 'INVALID_TOKEN');
    await expectTokenRefusedSoon(app(), a.tokens.access_token);
    expect((await me(app(), other.access_token)).statusCode).toBe(200);
    expect((await refresh({ refresh_token: other.refresh_token })).statusCode).toBe(200);
  });

  it('fails after logout', async () => {
    const { tokens } = await seedAndLogin(app());
    const logout = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/logout',
      headers: bearer(tokens.access_token),
    });
    expect(logout.statusCode).toBe(204);
    expectError(await refresh({ refresh_token: tokens.refresh_token }), 401, 'INVALID_TOKEN');
  });

  it('fails after an admin revokes the user’s sessions', async () => {
    const { tokens, user } = await seedAndLogin(app());
    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const revoke = await app().inject({
      method: 'DELETE',
      url: `/api/v2/admin/users/${user.id}/sessions`,
      headers: bearer(admin.access_token),
    });
    expect(revoke.statusCode).toBe(200);
    expectError(await refresh({ refresh_token: tokens.refresh_token }), 401, 'INVALID_TOKEN');
  });

  it('malformed or unknown refresh tokens → 401 INVALID_TOKEN, and they do not end a live session', async () => {
    const { tokens } = await seedAndLogin(app());
    for (const token of [
      'garbage',
      'a.b',
      '.',
      'no-such-session.abcdef',
      tokens.access_token.slice(0, 200),
    ]) {
      expectError(await refresh({ refresh_token: token }), 401, 'INVALID_TOKEN');
    }
    expect((await me(app(), tokens.access_token)).statusCode).toBe(200);
    expect((await refresh({ refresh_token: tokens.refresh_token })).statusCode).toBe(200);
  });

  it('a guessed token for a real session id is refused without signing the owner out', async () => {
    // The session id is visible in the access token; a made-up secret next to it must not end the session.
    const { tokens } = await seedAndLogin(app());
    const sessionId = tokens.refresh_token.split('.')[0];
    expectError(await refresh({ refresh_token: `${sessionId}.made-up-secret` }), 401, 'INVALID_TOKEN');
    expect((await me(app(), tokens.access_token)).statusCode).toBe(200);
    expect((await refresh({ refresh_token: tokens.refresh_token })).statusCode).toBe(200);
  });

  it('schema violations → 400 VALIDATION_FAILED', async () => {
    expectValidation(await refresh({}), 'refresh_token');
    expectValidation(await refresh({ refresh_token: '' }), 'refresh_token');
    expectValidation(await refresh({ refresh_token: 42 }), 'refresh_token');
    expectValidation(await refresh({ refresh_token: 'x'.repeat(201) }), 'refresh_token');
    expectValidation(await refresh({ refresh_token: 'x', extra: true }), 'extra');
  });

  it('an access token is not a refresh token', async () => {
    const { tokens } = await seedAndLogin(app());
    const response = await refresh({ refresh_token: tokens.access_token });
    // Too long for the schema (400) or simply unknown (401), depending on its length: never a new pair.
    expectError(
      response,
      response.statusCode,
      response.statusCode === 400 ? 'VALIDATION_FAILED' : 'INVALID_TOKEN',
    );
    expect([400, 401]).toContain(response.statusCode);
    expect(response.body).not.toContain('access_token');
    expect((await me(app(), tokens.access_token)).statusCode).toBe(200);
  });
});
