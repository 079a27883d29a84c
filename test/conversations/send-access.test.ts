// The membership check behind a send is cached for at most a second from when it began. Concurrent sends
// share one check, and a sender who keeps sending has it renewed in the background (so under load a send
// does not wait on that read), and a renewal that finds the membership gone refuses the very next send.
import type { CommandStartedEvent } from 'mongodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { COLLECTIONS } from '../../src/db/collections.js';
import { membershipId } from '../../src/repositories/channels.js';
import { useTestApp } from '../helper.js';
import { call, conversationOverrides, createChannel, person, send, unique } from './fixtures.js';

describe('send access checks', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  afterEach(() => {
    vi.useRealTimers();
  });

  /** Counts reads of the memberships collection while `work` runs. */
  async function membershipReads(work: () => Promise<unknown>): Promise<number> {
    let reads = 0;
    const onCommand = (event: CommandStartedEvent) => {
      if (event.commandName === 'find' && event.command.find === COLLECTIONS.memberships) reads += 1;
    };
    app().mongo.on('commandStarted', onCommand);
    try {
      await work();
    } finally {
      app().mongo.off('commandStarted', onCommand);
    }
    return reads;
  }

  it('concurrent sends of one sender to one channel share one membership check', async () => {
    const owner = await person(app());
    const channel = await createChannel(app(), owner, { kind: 'group', name: unique('cached') });
    const reads = await membershipReads(() =>
      Promise.all(
        Array.from({ length: 5 }, (_, n) => send(app(), owner, { channel_id: channel.id, content: `m${n}` })),
      ),
    );
    expect(reads).toBe(1);
  });

  it('renews the check of a steady sender in the background; a membership found gone refuses the next send', async () => {
    const owner = await person(app());
    const bob = await person(app());
    const channel = await createChannel(app(), owner, {
      kind: 'group',
      name: unique('renewed'),
      members: [bob.id],
    });
    // Only the clock the cache reads is controlled: the database and the sockets keep real time.
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    await send(app(), bob, { channel_id: channel.id, content: 'checked now' });

    // Removed by someone this process does not hear from (another instance, an admin tool).
    await app()
      .db.collection<{ _id: string }>(COLLECTIONS.memberships)
      .deleteOne({ _id: membershipId(channel.id, bob.id) });

    // Half a second on, the check is still good (made within the second): the send goes, and the check
    // is renewed meanwhile.
    vi.setSystemTime(start + 500);
    await send(app(), bob, { channel_id: channel.id, content: 'within the second' });
    // The renewal found bob gone: refused at once, though the first check is not a second old yet
    // (vi.waitFor moves the faked clock 50 ms per try; without the renewal, the refusal came at 1 s).
    await vi.waitFor(async () => {
      const refused = await call(app(), bob, 'POST', '/messages', { channel_id: channel.id, content: 'x' });
      expect(refused.json()).toMatchObject({ statusCode: 404, code: 'CHANNEL_NOT_FOUND' });
    });
    expect(Date.now() - start).toBeLessThan(1000);
  });
});
