// A send's client_id is remembered in an id-keyed record for a week (fast retries); after housekeeping
// removes it, a late retry still returns the stored message (found through the unique index on sender
// and client_id) and stores nothing new.
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';
import { call, conversationOverrides, createChannel, ok, person, send, unique } from './fixtures.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('client_id records', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  it('a retry after the record was swept returns the stored message, without a copy or a gap', async () => {
    const alice = await person(app());
    const channel = await createChannel(app(), alice, { name: unique('retry'), kind: 'group' });
    const first = await send(app(), alice, {
      channel_id: channel.id,
      content: 'once',
      client_id: 'late-retry-1',
    });

    const swept = await app().housekeeping.sweep(new Date(Date.now() + 8 * DAY_MS));
    expect(swept.messageClientIds).toBeGreaterThanOrEqual(1);

    const retry = await send(
      app(),
      alice,
      { channel_id: channel.id, content: 'once', client_id: 'late-retry-1' },
      200,
    );
    expect(retry.id).toBe(first.id);
    const next = await send(app(), alice, { channel_id: channel.id, content: 'next' });
    expect(next.seq).toBe(first.seq + 1);
    const history = await ok<{ messages: { id: string }[] }>(
      call(app(), alice, 'GET', `/channels/${channel.id}/messages`),
    );
    expect(history.messages.map((message) => message.id)).toEqual([first.id, next.id]);
  });
});
