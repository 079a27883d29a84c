// Analytics: counters written as minute, hour and day buckets per instance, summed back over a range;
// error groups with first and last sighting and a sample request id; connections; retention; the routes.
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AnalyticsRepository } from '../../src/repositories/analytics.js';
import { AnalyticsService } from '../../src/services/analytics.js';
import { call, createChannel, ok, person, type Person } from '../conversations/fixtures.js';
import { upload } from '../files/fixtures.js';
import { expectError, expectValidation } from '../identity/fixtures.js';
import { connect } from '../realtime/client.js';
import { startListening, type ListeningApp } from '../realtime/fixtures.js';

let listening: ListeningApp;
let admin: Person;
let member: Person;

beforeAll(async () => {
  listening = await startListening();
  admin = await person(listening.app, { roles: ['admin'] });
  member = await person(listening.app);
});
afterAll(async () => listening?.testApp.close());

const ADMIN_ACTOR = { id: 'admin', roles: ['admin'] as const };
const T0 = new Date('2026-03-10T10:00:30Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** A service on the test database with a clock the test moves; its own series names keep tests apart. */
function service(instance: string, clock: { now: Date }, retentionDays = 90) {
  return new AnalyticsService({
    analytics: new AnalyticsRepository(listening.app.db),
    instance,
    retentionDays,
    currentSockets: () => 0,
    now: () => clock.now,
  });
}

describe('AnalyticsService', () => {
  it('buckets errors by minute, hour and day, sums instances, and keeps each group’s sightings', async () => {
    const clock = { now: T0 };
    const a = service('instance-a', clock);
    const b = service('instance-b', clock);
    a.recordError('CHANNEL_NOT_FOUND', '/api/v2/channels/:channelId', 'req-1');
    clock.now = at(MINUTE);
    b.recordError('CHANNEL_NOT_FOUND', '/api/v2/channels/:channelId', 'req-2');
    a.recordError('RATE_LIMITED', '/api/v2/messages', 'req-3');
    clock.now = at(2 * HOUR);
    a.recordError('CHANNEL_NOT_FOUND', '/api/v2/channels/:channelId', 'req-4');
    await a.flush();
    await b.flush();
    const range = { from: at(-HOUR), to: at(3 * HOUR) };

    const hourly = await a.errors(ADMIN_ACTOR, { ...range, bucket: 'hour' });
    expect(hourly.series).toEqual([
      { start: '2026-03-10T10:00:00.000Z', count: 3 },
      { start: '2026-03-10T12:00:00.000Z', count: 1 },
    ]);
    expect(hourly.groups).toEqual([
      {
        code: 'CHANNEL_NOT_FOUND',
        route: '/api/v2/channels/:channelId',
        count: 3,
        first_seen: T0.toISOString(),
        last_seen: at(2 * HOUR).toISOString(),
        // A sample: the one of whichever instance wrote last.
        sample_request_id: expect.stringMatching(/^req-[124]$/),
      },
      expect.objectContaining({ code: 'RATE_LIMITED', route: '/api/v2/messages', count: 1 }),
    ]);
    const minutes = await a.errors(ADMIN_ACTOR, { from: T0, to: at(2 * MINUTE), bucket: 'minute' });
    expect(minutes.series.map((row) => row.count)).toEqual([1, 2]);
    const daily = await a.errors(ADMIN_ACTOR, { ...range, bucket: 'day' });
    expect(daily.series).toEqual([{ start: '2026-03-10T00:00:00.000Z', count: 4 }]);
  });

  it('keeps what it could not write and writes it once when the database is back', async () => {
    const client = new MongoClient(inject('mongoUrl'));
    await client.connect();
    const clock = { now: at(20 * DAY) };
    const analytics = new AnalyticsService({
      analytics: new AnalyticsRepository(client.db(listening.testApp.databaseName)),
      instance: 'instance-e',
      retentionDays: 90,
      currentSockets: () => 0,
      now: () => clock.now,
    });
    try {
      analytics.recordError('INTERNAL_ERROR', '/api/v2/messages', 'req-6');
      await client.close(); // the database is gone for this writer
      await expect(analytics.flush()).rejects.toThrow(/kept for the next flush/);
      analytics.recordError('INTERNAL_ERROR', '/api/v2/messages', 'req-7');
      await client.connect();
      await analytics.flush();
      const range = { from: at(20 * DAY - HOUR), to: at(20 * DAY + HOUR) };
      for (const bucket of ['minute', 'hour', 'day'] as const) {
        const report = await analytics.errors(ADMIN_ACTOR, {
          ...range,
          from: bucket === 'day' ? at(19 * DAY) : range.from,
          bucket,
        });
        expect(
          report.groups.map((group) => group.count),
          bucket,
        ).toEqual([2]);
      }
    } finally {
      await client.close();
    }
  });

  it('counts connections: opened, closed, the peak and the average session', async () => {
    const clock = { now: at(10 * DAY) };
    const analytics = service('instance-c', clock);
    analytics.connectionOpened(3);
    analytics.connectionOpened(5);
    analytics.connectionClosed(60_000);
    analytics.connectionClosed(30_000);
    await analytics.flush();
    const report = await analytics.connections(ADMIN_ACTOR, {
      from: at(10 * DAY - HOUR),
      to: at(10 * DAY + HOUR),
      bucket: 'hour',
    });
    expect(report.series).toEqual([
      { start: '2026-03-20T10:00:00.000Z', opened: 2, closed: 2, peak: 5, average_session_s: 45 },
    ]);
  });

  it('counts activity: messages by kind, top channels, uploads, daily and weekly active users', async () => {
    const clock = { now: at(40 * DAY) };
    const a = service('instance-f', clock);
    const b = service('instance-g', clock);
    a.recordMessage('group', 'channel-1', 'alice');
    a.recordMessage('group', 'channel-1', 'alice');
    b.recordMessage('direct', 'channel-2', 'bob');
    a.recordUpload(1000);
    b.connectionOpened(1, 'carol');
    clock.now = at(42 * DAY); // two days later: a new day, same week
    a.recordMessage('public', 'channel-3', 'dave');
    b.connectionOpened(1, 'alice');
    await a.flush();
    await b.flush();
    const report = await a.activity(ADMIN_ACTOR, {
      from: at(40 * DAY - HOUR),
      to: at(42 * DAY + HOUR),
      bucket: 'day',
    });
    expect(report.series).toEqual([
      {
        start: '2026-04-19T00:00:00.000Z',
        messages: { group: 2, direct: 1 },
        uploads: 1,
        upload_bytes: 1000,
      },
      { start: '2026-04-21T00:00:00.000Z', messages: { public: 1 }, uploads: 0, upload_bytes: 0 },
    ]);
    expect(report.top_channels).toEqual([
      { channel_id: 'channel-1', messages: 2 },
      { channel_id: 'channel-2', messages: 1 },
      { channel_id: 'channel-3', messages: 1 },
    ]);
    expect(report.active_users.daily).toEqual([
      { day: '2026-04-19T00:00:00.000Z', senders: 2, connectors: 1, users: 3 },
      { day: '2026-04-21T00:00:00.000Z', senders: 1, connectors: 1, users: 2 },
    ]);
    // alice, bob, carol, dave: each counted once over the week.
    expect(report.active_users.weekly.users).toBe(4);
    // Per sender, over whole days; this service has no user directory, so no names.
    const people = await a.users(ADMIN_ACTOR, { from: at(40 * DAY), to: at(43 * DAY), limit: 2 });
    expect(people.users.map((user) => [user.user_id, user.messages_sent])).toEqual([
      ['alice', 2],
      ['bob', 1],
    ]);
  });

  it('removes minute buckets after 2 days, hours after 30, days after the retention', async () => {
    const clock = { now: at(100 * DAY) };
    const analytics = service('instance-d', clock, 60);
    analytics.recordError('FORBIDDEN', '/api/v2/admin/config', 'req-5');
    await analytics.flush();
    const range = { from: at(100 * DAY - HOUR), to: at(100 * DAY + HOUR) };
    const count = async (bucket: 'minute' | 'hour' | 'day') =>
      (
        await analytics.errors(ADMIN_ACTOR, {
          ...range,
          from: bucket === 'day' ? at(99 * DAY) : range.from,
          bucket,
        })
      ).series.length;
    clock.now = at(103 * DAY);
    await analytics.sweep();
    expect([await count('minute'), await count('hour'), await count('day')]).toEqual([0, 1, 1]);
    clock.now = at(131 * DAY);
    await analytics.sweep();
    expect([await count('hour'), await count('day')]).toEqual([0, 1]);
    clock.now = at(161 * DAY);
    await analytics.sweep();
    expect(await count('day')).toBe(0);
  });
});

describe('GET /admin/analytics/errors and /connections', () => {
  it('report what the server answered and the sockets it held', async () => {
    const { app, port } = listening;
    const refused = await call(app, member, 'GET', '/channels/no-such-channel');
    expectError(refused, 404, 'CHANNEL_NOT_FOUND');
    const channelId = (await createChannel(app, member, { name: `analytics-${Date.now()}`, kind: 'group' }))
      .id;
    await ok(call(app, member, 'POST', '/messages', { channel_id: channelId, content: 'counted' }), 201);
    await upload(app, member, 'counted.txt', 'counted bytes');
    const socket = await connect(port, member);
    await socket.close();
    await new Promise((resolve) => setTimeout(resolve, 100)); // the server sees the close
    await app.analytics!.flush();

    const errors = await ok<{
      groups: { code: string; route: string; count: number; sample_request_id: string }[];
    }>(
      call(app, admin, 'GET', '/admin/analytics/errors', undefined, {
        bucket: 'minute',
        from: new Date(Date.now() - HOUR).toISOString(),
      }),
    );
    expect(errors.groups).toContainEqual(
      expect.objectContaining({
        code: 'CHANNEL_NOT_FOUND',
        route: '/api/v2/channels/:channelId',
        sample_request_id: refused.headers['x-request-id'],
      }),
    );
    const activity = await ok<{
      series: { messages: Record<string, number>; uploads: number }[];
      top_channels: { channel_id: string }[];
      active_users: { daily: { senders: number; connectors: number }[] };
    }>(call(app, admin, 'GET', '/admin/analytics/activity'));
    expect(activity.series.reduce((sum, row) => sum + (row.messages.group ?? 0), 0)).toBeGreaterThanOrEqual(
      1,
    );
    expect(activity.series.reduce((sum, row) => sum + row.uploads, 0)).toBeGreaterThanOrEqual(1);
    expect(activity.top_channels.map((row) => row.channel_id)).toContain(channelId);
    expect(activity.active_users.daily.at(-1)!.senders).toBeGreaterThanOrEqual(1);
    expect(activity.active_users.daily.at(-1)!.connectors).toBeGreaterThanOrEqual(1);

    const people = await ok<{
      users: { user_id: string; name: string; messages_sent: number; open_sessions: number }[];
    }>(call(app, admin, 'GET', '/admin/analytics/users'));
    expect(people.users).toContainEqual(
      expect.objectContaining({ user_id: member.id, name: member.name, messages_sent: 1 }),
    );
    expect(people.users.find((user) => user.user_id === member.id)!.open_sessions).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(people)).not.toContain('counted'); // never content

    const connections = await ok<{ current: number; series: { opened: number; closed: number }[] }>(
      call(app, admin, 'GET', '/admin/analytics/connections'),
    );
    const totals = connections.series.reduce(
      (sum, row) => ({ opened: sum.opened + row.opened, closed: sum.closed + row.closed }),
      { opened: 0, closed: 0 },
    );
    expect(totals.opened).toBeGreaterThanOrEqual(1);
    expect(totals.closed).toBeGreaterThanOrEqual(1);
    expect(connections.current).toBe(0);
  });

  it('checks the range and who asks', async () => {
    const { app } = listening;
    const now = Date.now();
    expectValidation(
      await call(app, admin, 'GET', '/admin/analytics/errors', undefined, {
        from: new Date(now).toISOString(),
        to: new Date(now - HOUR).toISOString(),
      }),
      'from',
    );
    expectValidation(
      await call(app, admin, 'GET', '/admin/analytics/errors', undefined, {
        bucket: 'minute',
        from: new Date(now - 3 * DAY).toISOString(),
      }),
      'bucket',
    );
    expectValidation(
      await call(app, admin, 'GET', '/admin/analytics/connections', undefined, { bucket: 'week' }),
      'bucket',
    );
    expectError(await call(app, member, 'GET', '/admin/analytics/errors'), 403, 'FORBIDDEN');
  });
});
