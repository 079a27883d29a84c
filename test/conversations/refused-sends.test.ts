// A refused send changes nothing: no direct channel appears for a first message that was refused, and no
// file is shared by a send that the rate limit refused (both found by the reliability fuzzer).
import { describe, expect, it } from 'vitest';
import { upload } from '../files/fixtures.js';
import { useTestApp } from '../helper.js';
import { call, conversationOverrides, ok, person } from './fixtures.js';

describe('a refused send', () => {
  const testApp = useTestApp(conversationOverrides({ rate_limit: { messages_per_minute: 2 } }));

  it('to someone never written to before leaves no direct channel behind', async () => {
    const { app } = testApp();
    const [alice, bob] = [await person(app), await person(app)];
    const elsewhere = await ok<{ id: string }>(
      call(app, alice, 'POST', '/messages', { channel_id: 'general', content: 'hello all' }),
      201,
    );
    for (const refused of [
      { recipient_id: bob.id, content: 'hi', reply_to: elsewhere.id },
      { recipient_id: bob.id, content: 'hi', attachments: ['0123456789abcdef01234567'] },
    ]) {
      const response = await call(app, alice, 'POST', '/messages', refused);
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
      expect(response.statusCode).toBeLessThan(500);
    }
    const bobsChannels = await ok<{ channels: { kind: string }[] }>(call(app, bob, 'GET', '/channels'));
    expect(bobsChannels.channels.filter((channel) => channel.kind === 'direct')).toEqual([]);
    expect(await app.db.collection('channels').countDocuments({ kind: 'direct' })).toBe(0);
  });

  it('refused by the rate limit shares none of its files', async () => {
    const { app } = testApp();
    const carol = await person(app);
    const file = await upload(app, carol, 'plan.txt', 'the plan');
    for (const content of ['one', 'two'])
      await ok(call(app, carol, 'POST', '/messages', { channel_id: 'general', content }), 201);
    const limited = await call(app, carol, 'POST', '/messages', {
      channel_id: 'general',
      content: 'three',
      attachments: [file.id],
    });
    expect(limited.json()).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED' });
    const stored = await app.db.collection('files').findOne({ _id: file.id as never });
    expect(stored).toMatchObject({ shared_in: [] });
    // Another member still cannot open it.
    const dave = await person(app);
    expect((await call(app, dave, 'GET', `/files/${file.id}`)).statusCode).toBe(404);
  });
});
