// Announcements as admins and members see them: an admin publishes at once (everyone is told with one
// `new_announcement`) or at a scheduled time (the scheduler publishes it, once), members only ever see
// published ones, only admins create or delete, bad input stores nothing, and an announcement that fell
// due while the server was down goes out when the server starts again — once.
import type { FastifyPluginAsync } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { COLLECTIONS } from '../../src/db/collections.js';
import type { PublicAnnouncement } from '../../src/services/announcements.js';
import type { Audience, RealtimeEvent } from '../../src/services/events.js';
import { buildTestApp, type TestApp, useTestApp } from '../helper.js';
import { eventually, loginOk, seedUser, sleep } from '../identity/fixtures.js';
import {
  call,
  conversationOverrides,
  expectError,
  expectValidation,
  ok,
  person,
  recordEvents,
  unique,
  type Person,
} from './fixtures.js';

const app = useTestApp(conversationOverrides({ announcements: { check_interval_s: 0.2 } }));

interface AnnouncementList {
  announcements: PublicAnnouncement[];
  next_cursor: string | null;
  has_more: boolean;
}

async function list(testApp: TestApp, who: Person): Promise<PublicAnnouncement[]> {
  const page = await ok<AnnouncementList>(
    call(testApp.app, who, 'GET', '/announcements', undefined, { limit: '200' }),
  );
  return page.announcements;
}

async function listed(testApp: TestApp, who: Person, id: string): Promise<PublicAnnouncement | undefined> {
  return (await list(testApp, who)).find((announcement) => announcement.id === id);
}

function post(testApp: TestApp, who: Person | undefined, body: unknown) {
  return call(testApp.app, who, 'POST', '/announcements', body);
}

/** The `new_announcement` events about announcement `id`. */
function announcementEvents(events: { event: RealtimeEvent; audience: Audience }[], id: string) {
  return events.filter(
    (entry) =>
      entry.event.type === 'new_announcement' &&
      (entry.event.data as PublicAnnouncement | undefined)?.id === id,
  );
}

function inSeconds(seconds: number): Date {
  return new Date(Date.now() + seconds * 1000);
}

describe('announcements: publishing now', () => {
  it('an admin publishes at once: members list it and everyone gets one new_announcement', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const member = await person(app().app);
    const recorder = recordEvents(app().app);
    try {
      const title = unique('Title ');
      const created = await ok<PublicAnnouncement>(
        post(app(), admin, { title, content: 'The office is closed on Friday.\nEnjoy!', priority: 'high' }),
        201,
      );
      expect(created).toMatchObject({
        title,
        content: 'The office is closed on Friday.\nEnjoy!',
        priority: 'high',
        created_by: admin.id,
        scheduled_at: null,
        published: true,
      });
      expect(created.id).toMatch(/^[0-9a-f]{24}$/);
      expect(created.published_at).not.toBeNull();
      expect(Number.isNaN(Date.parse(created.published_at!))).toBe(false);

      expect(await listed(app(), member, created.id)).toEqual(created);
      expect(await listed(app(), admin, created.id)).toEqual(created);
      // Newest first.
      expect((await list(app(), member))[0]!.id).toBe(created.id);

      const events = announcementEvents(recorder.events, created.id);
      expect(events).toHaveLength(1);
      expect(events[0]!.audience).toEqual({ kind: 'everyone' });
      expect(events[0]!.event).toEqual({ type: 'new_announcement', data: created });
    } finally {
      recorder.stop();
    }
  });

  it('is published by its own request, never raced by the scheduler (it runs every 200 ms here)', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    for (let n = 0; n < 25; n += 1) {
      const created = await ok<PublicAnnouncement>(
        post(app(), admin, { title: unique('Now '), content: `Number ${n}` }),
        201,
      );
      expect(created.published, `announcement ${n}`).toBe(true);
      // Should the request fail between its insert and its publication, the scheduler takes over after a
      // minute, not at once.
      const stored = await app()
        .app.db.collection<{ _id: string; created_at: Date; due_at: Date }>(COLLECTIONS.announcements)
        .findOne({ _id: created.id });
      expect(stored!.due_at.getTime() - stored!.created_at.getTime()).toBe(60_000);
    }
  });

  it('defaults the priority to medium, and a scheduled_at in the past means now', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const member = await person(app().app);
    const plain = await ok<PublicAnnouncement>(
      post(app(), admin, { title: unique('Plain '), content: 'No priority given' }),
      201,
    );
    expect(plain).toMatchObject({ priority: 'medium', published: true });
    const past = new Date(Date.now() - 60_000).toISOString();
    const late = await ok<PublicAnnouncement>(
      post(app(), admin, { title: unique('Late '), content: 'Should have gone out', scheduled_at: past }),
      201,
    );
    expect(late).toMatchObject({ published: true, scheduled_at: past });
    expect(await listed(app(), member, late.id)).toMatchObject({ published: true });
  });
});

describe('announcements: who may do what', () => {
  it('members may read but not create or delete; anonymous callers get 401', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const member = await person(app().app);
    const moderator = await person(app().app, { roles: ['moderator'] });
    const recorder = recordEvents(app().app);
    try {
      const title = unique('Members cannot ');
      expectError(await post(app(), member, { title, content: 'x', priority: 'low' }), 403, 'FORBIDDEN');
      expectError(await post(app(), moderator, { title, content: 'x', priority: 'low' }), 403, 'FORBIDDEN');
      expectError(
        await post(app(), undefined, { title, content: 'x', priority: 'low' }),
        401,
        'UNAUTHORIZED',
      );
      expect((await list(app(), admin)).some((announcement) => announcement.title === title)).toBe(false);
      expect(recorder.ofType('new_announcement')).toEqual([]);

      const created = await ok<PublicAnnouncement>(post(app(), admin, { title, content: 'stays' }), 201);
      expectError(await call(app().app, member, 'DELETE', `/announcements/${created.id}`), 403, 'FORBIDDEN');
      expectError(
        await call(app().app, moderator, 'DELETE', `/announcements/${created.id}`),
        403,
        'FORBIDDEN',
      );
      expectError(
        await call(app().app, undefined, 'DELETE', `/announcements/${created.id}`),
        401,
        'UNAUTHORIZED',
      );
      expectError(await call(app().app, undefined, 'GET', '/announcements'), 401, 'UNAUTHORIZED');
      expect(await listed(app(), member, created.id)).toEqual(created);
    } finally {
      recorder.stop();
    }
  });

  it('refuses bad input with 400 and stores nothing', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const recorder = recordEvents(app().app);
    try {
      const title = unique('Refused ');
      const cases: { body: unknown; field: string }[] = [
        { body: { content: 'no title' }, field: 'title' },
        { body: { title: '   ', content: 'blank title' }, field: 'title' },
        { body: { title: 'x'.repeat(201), content: 'long title' }, field: 'title' },
        { body: { title, content: 'bad priority', priority: 'urgent' }, field: 'priority' },
        { body: { title, content: 'bad priority', priority: 'HIGH' }, field: 'priority' },
        { body: { title, content: '' }, field: 'content' },
        { body: { title }, field: 'content' },
        { body: { title, content: 'bad time', scheduled_at: 'tomorrow' }, field: 'scheduled_at' },
        { body: { title, content: 'bad time', scheduled_at: '2030-01-01' }, field: 'scheduled_at' },
        { body: { title, content: 'bad time', scheduled_at: '2030-02-30T10:00:00Z' }, field: 'scheduled_at' },
        { body: { title, content: 'bad time', scheduled_at: 1_900_000_000_000 }, field: 'scheduled_at' },
        {
          body: {
            title,
            content: 'too far ahead',
            scheduled_at: new Date(Date.now() + 400 * 86_400_000).toISOString(),
          },
          field: 'scheduled_at',
        },
        { body: { title, content: 'unknown field', pinned: true }, field: 'pinned' },
        { body: { title, content: 'unknown field', created_by: admin.id }, field: 'created_by' },
      ];
      for (const { body, field } of cases) expectValidation(await post(app(), admin, body), field);
      const readAs = (query: Record<string, string>) =>
        call(app().app, admin, 'GET', '/announcements', undefined, query);
      expectValidation(await readAs({ cursor: 'not-a-cursor' }), 'cursor');
      expectValidation(await readAs({ limit: '0' }), 'limit');
      expectValidation(await readAs({ limit: '1000' }), 'limit');
      expectValidation(await readAs({ priority: 'high' }), 'priority');

      const all = await list(app(), admin);
      expect(all.some((announcement) => announcement.title === title)).toBe(false);
      expect(all.some((announcement) => announcement.title === 'x'.repeat(201))).toBe(false);
      expect(recorder.ofType('new_announcement')).toEqual([]);
    } finally {
      recorder.stop();
    }
  });

  it('deletes: unknown id is 404, a deleted announcement leaves every list', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const member = await person(app().app);
    const unknownId = 'f'.repeat(24);
    expectError(
      await call(app().app, admin, 'DELETE', `/announcements/${unknownId}`),
      404,
      'ANNOUNCEMENT_NOT_FOUND',
    );
    expectValidation(await call(app().app, admin, 'DELETE', '/announcements/not-an-id'), 'id');

    const created = await ok<PublicAnnouncement>(
      post(app(), admin, { title: unique('Gone soon '), content: 'to delete' }),
      201,
    );
    const other = await ok<PublicAnnouncement>(
      post(app(), admin, { title: unique('Stays '), content: 'to keep' }),
      201,
    );
    expect(await listed(app(), member, created.id)).toBeDefined();

    await ok(call(app().app, admin, 'DELETE', `/announcements/${created.id}`), 204);
    expect(await listed(app(), member, created.id)).toBeUndefined();
    expect(await listed(app(), admin, created.id)).toBeUndefined();
    expect(await listed(app(), member, other.id)).toEqual(other);
    expectError(
      await call(app().app, admin, 'DELETE', `/announcements/${created.id}`),
      404,
      'ANNOUNCEMENT_NOT_FOUND',
    );
  });
});

describe('announcements: scheduled', () => {
  it('stays hidden from members until its time, then the scheduler publishes it once', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const member = await person(app().app);
    const recorder = recordEvents(app().app);
    try {
      const scheduledAt = inSeconds(2).toISOString();
      const created = await ok<PublicAnnouncement>(
        post(app(), admin, {
          title: unique('Later '),
          content: 'Scheduled',
          priority: 'low',
          scheduled_at: scheduledAt,
        }),
        201,
      );
      expect(created).toMatchObject({ published: false, published_at: null, scheduled_at: scheduledAt });

      expect(await listed(app(), member, created.id)).toBeUndefined();
      expect(await listed(app(), admin, created.id)).toEqual(created);
      expect(announcementEvents(recorder.events, created.id)).toEqual([]);

      let seen: PublicAnnouncement | undefined;
      const published = await eventually(async () => {
        seen = await listed(app(), member, created.id);
        return seen !== undefined;
      }, 15_000);
      expect(published, 'the scheduled announcement was not published').toBe(true);
      expect(seen).toMatchObject({
        id: created.id,
        published: true,
        scheduled_at: scheduledAt,
        priority: 'low',
      });
      expect(Date.parse(seen!.published_at!)).toBeGreaterThanOrEqual(Date.parse(scheduledAt));

      // A few more scheduler rounds change nothing and send nothing more.
      await sleep(1_000);
      const events = announcementEvents(recorder.events, created.id);
      expect(events).toHaveLength(1);
      expect(events[0]!.audience).toEqual({ kind: 'everyone' });
      expect(events[0]!.event).toEqual({ type: 'new_announcement', data: seen });
      expect(await listed(app(), member, created.id)).toEqual(seen);
      expect(await listed(app(), admin, created.id)).toEqual(seen);
    } finally {
      recorder.stop();
    }
  });

  it('a scheduled announcement deleted before its time never goes out', async () => {
    const admin = await person(app().app, { roles: ['admin'] });
    const member = await person(app().app);
    const recorder = recordEvents(app().app);
    try {
      const scheduledAt = inSeconds(1);
      const created = await ok<PublicAnnouncement>(
        post(app(), admin, {
          title: unique('Cancelled '),
          content: 'never',
          scheduled_at: scheduledAt.toISOString(),
        }),
        201,
      );
      await ok(call(app().app, admin, 'DELETE', `/announcements/${created.id}`), 204);
      // Wait past its time and several scheduler rounds.
      await sleep(Math.max(0, scheduledAt.getTime() - Date.now()) + 1_000);
      expect(await listed(app(), member, created.id)).toBeUndefined();
      expect(await listed(app(), admin, created.id)).toBeUndefined();
      expect(announcementEvents(recorder.events, created.id)).toEqual([]);
    } finally {
      recorder.stop();
    }
  });
});

describe('announcements: across a restart', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    for (const testApp of apps.splice(0).reverse()) await testApp.close().catch(() => undefined);
  });

  /** An app on `databaseName` that records events from before its start-up tasks run. */
  async function startApp(databaseName: string | undefined, keepDatabase: boolean) {
    const events: { event: RealtimeEvent; audience: Audience }[] = [];
    const recorder: FastifyPluginAsync = async (fastify) => {
      const stop = fastify.events.subscribe((event, audience) => events.push({ event, audience }));
      fastify.addHook('onClose', async () => stop());
    };
    const testApp = await buildTestApp(conversationOverrides({ announcements: { check_interval_s: 3600 } }), {
      routes: recorder,
      keepDatabase,
      ...(databaseName ? { databaseName } : {}),
    });
    apps.push(testApp);
    await testApp.app.database.whenReady();
    return { testApp, events };
  }

  async function asPerson(testApp: TestApp, email: string, password: string): Promise<Person> {
    const tokens = await loginOk(testApp.app, email, password);
    return {
      id: tokens.user.id,
      email,
      name: tokens.user.name,
      token: tokens.access_token,
      headers: { authorization: `Bearer ${tokens.access_token}` },
    };
  }

  it(
    'publishes at start-up what fell due while the server was down, exactly once',
    { timeout: 60_000 },
    async () => {
      // First run: schedule, then stop before it is due (this server's scheduler would not run for an hour).
      const first = await startApp(undefined, true);
      const adminAccount = await seedUser(first.testApp.app, { roles: ['admin'] });
      const memberAccount = await seedUser(first.testApp.app);
      const admin = await asPerson(first.testApp, adminAccount.email, adminAccount.password);
      const scheduledAt = inSeconds(1.5);
      const created = await ok<PublicAnnouncement>(
        post(first.testApp, admin, {
          title: unique('While down '),
          content: 'Goes out at the next start',
          priority: 'high',
          scheduled_at: scheduledAt.toISOString(),
        }),
        201,
      );
      expect(created.published).toBe(false);
      expect(await listed(first.testApp, admin, created.id)).toMatchObject({ published: false });
      await first.testApp.close();
      expect(announcementEvents(first.events, created.id)).toEqual([]);

      await sleep(Math.max(0, scheduledAt.getTime() - Date.now()) + 200);

      // Second run on the same database: the start-up check publishes it.
      const second = await startApp(first.testApp.databaseName, true);
      const member = await asPerson(second.testApp, memberAccount.email, memberAccount.password);
      const seen = await listed(second.testApp, member, created.id);
      expect(seen).toMatchObject({ id: created.id, published: true, priority: 'high' });
      expect(Date.parse(seen!.published_at!)).toBeGreaterThanOrEqual(scheduledAt.getTime());
      const events = announcementEvents(second.events, created.id);
      expect(events).toHaveLength(1);
      expect(events[0]!.audience).toEqual({ kind: 'everyone' });
      expect(events[0]!.event).toEqual({ type: 'new_announcement', data: seen });
      await second.testApp.close();

      // Third run: nothing is due any more, so nothing goes out again and the announcement is unchanged.
      const third = await startApp(first.testApp.databaseName, false);
      const memberAgain = await asPerson(third.testApp, memberAccount.email, memberAccount.password);
      expect(await listed(third.testApp, memberAgain, created.id)).toEqual(seen);
      expect(announcementEvents(third.events, created.id)).toEqual([]);
    },
  );
});
