// SESSION_TIMEOUT: a session unused for longer ends; use moves its idle timer (written back at most about
// once a minute, by id alone so FerretDB finds it through its index instead of reading every session).
import type { CommandStartedEvent } from 'mongodb';
import { describe, expect, it, vi } from 'vitest';
import { COLLECTIONS } from '../../src/db/collections.js';
import type { SessionDoc } from '../../src/repositories/sessions.js';
import { useTestApp } from '../helper.js';
import { decodeJwtPart, expectError, identityOverrides, me, seedAndLogin } from './fixtures.js';

describe('idle sessions', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('use keeps a session alive and moves its idle timer; past SESSION_TIMEOUT it is refused', async () => {
    const { tokens } = await seedAndLogin(app());
    const sessionId = String(decodeJwtPart(tokens.access_token.split('.')[1]!).sid);
    const sessions = app().db.collection<SessionDoc>(COLLECTIONS.sessions);
    const timeoutMs = app().config.auth.session_timeout_s * 1000;
    /** Sets when the session was last used, and drops what the app remembers of it. */
    const lastUsed = async (msAgo: number) => {
      await sessions.updateOne({ _id: sessionId }, { $set: { last_used_at: new Date(Date.now() - msAgo) } });
      app().auth.forgetSession(sessionId);
    };
    const touches: unknown[] = [];
    const onCommand = (event: CommandStartedEvent) => {
      if (event.commandName === 'update' && event.command.update === COLLECTIONS.sessions)
        touches.push(...(event.command.updates as { q: unknown }[]).map((update) => update.q));
    };

    // Two minutes idle (of an hour): still live, and this use is written back.
    await lastUsed(120_000);
    app().mongo.on('commandStarted', onCommand);
    try {
      expect((await me(app(), tokens.access_token)).statusCode).toBe(200);
      await vi.waitFor(async () => {
        const session = await sessions.findOne({ _id: sessionId });
        expect(Date.now() - session!.last_used_at.getTime()).toBeLessThan(10_000);
      });
    } finally {
      app().mongo.off('commandStarted', onCommand);
    }
    expect(touches).toEqual([{ _id: sessionId }]);

    // Idle a moment past the timeout: ended.
    await lastUsed(timeoutMs + 1000);
    expectError(await me(app(), tokens.access_token), 401, 'INVALID_TOKEN');
  });
});
