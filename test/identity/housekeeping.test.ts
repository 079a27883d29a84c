// The hourly sweep removes what would otherwise pile up: ended sessions, spent set-password tokens and
// idle failed-login counters, and nothing that still matters. The clock is passed in, so "a week later" is
// a date, not a wait.
import { describe, expect, it } from 'vitest';
import { NO_REQUEST, SYSTEM_ACTOR } from '../../src/services/context.js';
import { useTestApp } from '../helper.js';
import {
  expectError,
  identityOverrides,
  login,
  loginOk,
  me,
  seedUser,
  strongPassword,
  uniqueEmail,
} from './fixtures.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('housekeeping sweep', () => {
  const testApp = useTestApp(identityOverrides({ ip_max_login_failures: 10_000 }));
  const app = () => testApp().app;

  it('removes ended sessions, spent tokens and idle counters a while after the fact, and keeps live ones', async () => {
    const ended = await seedUser(app());
    const endedTokens = await loginOk(app(), ended.email, ended.password);
    await app().inject({
      method: 'POST',
      url: '/api/v2/auth/logout',
      headers: { authorization: `Bearer ${endedTokens.access_token}` },
    });
    const live = await seedUser(app());
    const liveTokens = await loginOk(app(), live.email, live.password);
    const { set_password_token: token } = await app().users.create(
      SYSTEM_ACTOR,
      { email: uniqueEmail(), name: 'Token Person', department: 'Ops' },
      NO_REQUEST,
    );
    expect(
      (await login(app(), { email: uniqueEmail('nobody'), password: 'Wrong-password-1234' }, '10.40.0.1'))
        .statusCode,
    ).toBe(401);

    // Right now nothing is old enough to go.
    expect(await app().housekeeping.sweep(new Date())).toEqual({
      sessions: 0,
      passwordTokens: 0,
      loginThrottle: 0,
      claims: 0,
      messageClientIds: 0,
    });

    // Eight days on (within the sessions' absolute lifetime): the logged-out session, the token past its
    // week and the day-old counters go; the live session stays.
    const later = await app().housekeeping.sweep(new Date(Date.now() + 8 * DAY_MS));
    expect(later.sessions).toBe(1);
    expect(later.passwordTokens).toBeGreaterThanOrEqual(1);
    expect(later.loginThrottle).toBeGreaterThanOrEqual(2); // the account and the address
    expect((await me(app(), liveTokens.access_token)).statusCode).toBe(200);
    const used = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/set-password',
      payload: { token, password: strongPassword() },
    });
    expectError(used, 400, 'INVALID_SET_PASSWORD_TOKEN');
  });
});
