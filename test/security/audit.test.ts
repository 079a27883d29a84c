// The tamper-evident audit trail: real actions appear in GET /admin/audit (filters, paging, admins only),
// the hash chain verifies, and editing or deleting a stored record is found and named. Appends stay a
// gap-free chain under concurrency, from two app instances on one database, before the database is
// ready and after a failed write; each stored record is mirrored to audit.log with its seq and hash.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEXES, COLLECTIONS } from '../../src/db/collections.js';
import { isDuplicateKey } from '../../src/db/errors.js';
import { AuditRepository, type AuditRecordDoc } from '../../src/repositories/audit.js';
import {
  AuditService,
  GENESIS_HASH,
  auditHash,
  type AuditDatabase,
  type PublicAuditRecord,
} from '../../src/services/audit.js';
import { NO_REQUEST, SYSTEM_ACTOR } from '../../src/services/context.js';
import {
  call,
  conversationOverrides,
  createChannel,
  ok,
  person,
  send,
  type Person,
} from '../conversations/fixtures.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  expectError,
  expectValidation,
  login,
  loginOk,
  sleep,
  strongPassword,
  unique,
  uniqueEmail,
} from '../identity/fixtures.js';
import { buildTestApp, uniqueDatabaseName, useTestApp, type TestApp } from '../helper.js';

interface AuditList {
  records: PublicAuditRecord[];
  has_more: boolean;
  next_before: number | null;
}
type Verification = {
  ok: boolean;
  checked: number;
  broken_at?: { seq: number; id: string | null; reason: string };
};

const RFC3339_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const getApp = useTestApp(conversationOverrides());
const app = () => getApp().app;
let admin: Person;
let moderator: Person;
let member: Person;

beforeAll(async () => {
  admin = await person(app(), { roles: ['admin'] });
  moderator = await person(app(), { roles: ['moderator'] });
  member = await person(app());
});

async function listAs(
  target: FastifyInstance,
  who: Person,
  query: Record<string, string> = {},
): Promise<AuditList> {
  await target.audit.flush();
  return ok<AuditList>(call(target, who, 'GET', '/admin/audit', undefined, query));
}
const list = (query: Record<string, string> = {}) => listAs(app(), admin, query);

async function verifyAs(target: FastifyInstance, who: Person): Promise<Verification> {
  await target.audit.flush();
  return ok<Verification>(call(target, who, 'GET', '/admin/audit/verify'));
}

/** Every record, oldest first, straight from the collection. */
async function stored(target: FastifyInstance): Promise<AuditRecordDoc[]> {
  await target.audit.flush();
  return target.db.collection<AuditRecordDoc>('audit').find({}).sort({ seq: 1 }).toArray();
}

function expectGapFree(records: AuditRecordDoc[]): void {
  expect(records.map((record) => record.seq)).toEqual(records.map((_, index) => index + 1));
  records.forEach((record, index) => {
    expect(record.prev_hash).toBe(index === 0 ? GENESIS_HASH : records[index - 1]!.hash);
    expect(record.hash).toBe(auditHash(record));
  });
}

describe('GET /admin/audit', () => {
  it('shows real API actions with who, what, when and from which request', async () => {
    const since = new Date();
    const email = uniqueEmail('audited');
    const created = await call(app(), admin, 'POST', '/admin/users', {
      email,
      name: 'Audited Person',
      department: 'Audit',
    });
    expect(created.statusCode, created.body).toBe(201);
    const userId = created.json<{ id: string }>().id;
    const channel = await createChannel(app(), admin, { name: unique('audited'), kind: 'public' });

    const page = await list({ actor: admin.id, since: since.toISOString() });
    expect(page.records.map((record) => record.action)).toEqual(['channel.create', 'user.create']);
    const [channelRecord, userRecord] = page.records as [PublicAuditRecord, PublicAuditRecord];
    expect(userRecord).toMatchObject({
      action: 'user.create',
      actor_id: admin.id,
      target_type: 'user',
      target_id: userId,
      outcome: 'success',
      request_id: created.headers['x-request-id'],
      ip: '127.0.0.1',
      user_agent: 'lightMyRequest',
    });
    expect(channelRecord).toMatchObject({ target_type: 'channel', target_id: channel.id });
    expect(channelRecord.details).toMatchObject({ name: channel.name, kind: 'public' });
    // Newest first, each linked to the one before it.
    expect(channelRecord.seq).toBe(userRecord.seq + 1);
    expect(channelRecord.prev_hash).toBe(userRecord.hash);
    for (const record of page.records) {
      expect(record.at).toMatch(RFC3339_MS_UTC);
      expect(new Date(record.at).getTime()).toBeGreaterThanOrEqual(since.getTime());
      expect(record.hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('records the security-relevant actions of the issue, failures included', async () => {
    const since = new Date().toISOString();
    const target = await person(app());
    // Authentication: a failed and a good login, a refresh token used twice, a logout.
    expect((await login(app(), { email: target.email, password: 'Wrong-Password-123' })).statusCode).toBe(
      401,
    );
    const password = strongPassword();
    const { user } = await app().users.create(
      SYSTEM_ACTOR,
      { email: uniqueEmail('pw'), name: 'Refresh Reuser', department: 'Audit', password },
      NO_REQUEST,
    );
    const pair = await loginOk(app(), user.email, password);
    await ok(
      app().inject({
        method: 'POST',
        url: '/api/v2/auth/refresh',
        payload: { refresh_token: pair.refresh_token },
      }),
    );
    const reused = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/refresh',
      payload: { refresh_token: pair.refresh_token },
    });
    expect(reused.statusCode).toBe(401);
    await ok(call(app(), target, 'POST', '/auth/logout'), 204);
    // Roles, channels and membership, a moderator's delete, announcements, admin reads.
    await ok(call(app(), admin, 'PATCH', `/admin/users/${user.id}`, { roles: ['moderator'] }));
    const group = await createChannel(app(), moderator, { name: unique('grp'), kind: 'group' });
    await ok(call(app(), moderator, 'POST', `/channels/${group.id}/members`, { members: [member.id] }));
    const message = await send(app(), member, { channel_id: group.id, content: 'to be moderated' });
    await ok(call(app(), moderator, 'DELETE', `/messages/${message.id}`));
    await ok(call(app(), moderator, 'DELETE', `/channels/${group.id}/members/${member.id}`), 204);
    const open = await createChannel(app(), admin, { name: unique('pub'), kind: 'public' });
    await ok(call(app(), member, 'POST', `/channels/${open.id}/join`));
    await ok(call(app(), admin, 'DELETE', `/channels/${open.id}`));
    const announcement = await ok<{ id: string }>(
      call(app(), admin, 'POST', '/announcements', { title: 'Audit', content: 'Recorded' }),
      201,
    );
    await ok(call(app(), admin, 'DELETE', `/announcements/${announcement.id}`), 204);
    await ok(call(app(), admin, 'GET', '/admin/config'));
    await ok(call(app(), admin, 'GET', '/admin/logs/main.json', undefined, { tail: '1' }));

    const { records } = await list({ since, limit: '200' });
    const find = (action: string, match: Partial<PublicAuditRecord> = {}) => {
      const found = records.find(
        (record) =>
          record.action === action &&
          Object.entries(match).every(([key, value]) => record[key as keyof PublicAuditRecord] === value),
      );
      expect(found, `${action} ${JSON.stringify(match)}`).toBeDefined();
      return found!;
    };
    expect(find('auth.login', { outcome: 'failure', target_id: target.email }).details).toMatchObject({
      reason: 'bad_credentials',
    });
    find('auth.login', { outcome: 'success', actor_id: user.id });
    expect(find('session.revoke').details).toMatchObject({
      reason: 'refresh_token_reused',
      user_id: user.id,
    });
    find('auth.logout', { actor_id: target.id });
    expect(find('user.roles_change', { target_id: user.id, actor_id: admin.id })).toBeDefined();
    find('channel.create', { target_id: group.id, actor_id: moderator.id });
    expect(find('channel.members_add', { target_id: group.id }).details).toMatchObject({
      user_ids: [member.id],
    });
    expect(find('message.delete_moderated', { target_id: message.id }).details).toMatchObject({
      sender_id: member.id,
    });
    find('channel.members_remove', { target_id: group.id, actor_id: moderator.id });
    find('channel.join', { target_id: open.id, actor_id: member.id });
    find('channel.archive', { target_id: open.id, actor_id: admin.id });
    find('announcement.create', { target_id: announcement.id });
    find('announcement.delete', { target_id: announcement.id });
    find('admin.config_view', { actor_id: admin.id, target_type: 'config' });
    expect(find('admin.log_read', { actor_id: admin.id }).details).toMatchObject({
      name: 'main.json',
      tail: 1,
    });
  });

  it('filters by actor (id or email), action (exact or prefix), target and time', async () => {
    const since = new Date();
    const first = await ok<{ id: string }>(
      call(app(), admin, 'POST', '/admin/users', {
        email: uniqueEmail('f'),
        name: 'Filter One',
        department: 'F',
      }),
      201,
    );
    await sleep(5); // the two records must not share a millisecond: the time filters split them below
    await ok(call(app(), admin, 'PATCH', `/admin/users/${first.id}`, { department: 'G' }));
    await createChannel(app(), admin, { name: unique('filter'), kind: 'public' });

    const byActor = await list({ actor: admin.id, since: since.toISOString() });
    expect(byActor.records.map((record) => record.action)).toEqual([
      'channel.create',
      'user.update',
      'user.create',
    ]);
    expect(await list({ actor: admin.email.toUpperCase(), since: since.toISOString() })).toEqual(byActor);

    const users = await list({ action: 'user.*', since: since.toISOString() });
    expect(users.records.map((record) => record.action)).toEqual(['user.update', 'user.create']);
    const exact = await list({ action: 'user.create', since: since.toISOString() });
    expect(exact.records.map((record) => record.target_id)).toEqual([first.id]);
    // Without "*" the action must match exactly.
    expect((await list({ action: 'user', since: since.toISOString() })).records).toEqual([]);

    const byTarget = await list({ target: first.id });
    expect(byTarget.records.map((record) => record.action)).toEqual(['user.update', 'user.create']);
    expect(byTarget.records.every((record) => record.target_id === first.id)).toBe(true);

    // since is inclusive, until exclusive: the two split the trail at one instant.
    const cut = new Date(byTarget.records[0]!.at);
    const after = await list({ target: first.id, since: cut.toISOString() });
    const before = await list({ target: first.id, until: cut.toISOString() });
    expect(after.records.map((record) => record.action)).toEqual(['user.update']);
    expect(before.records.map((record) => record.action)).toEqual(['user.create']);
    // Offsets are read as such.
    const inIndia = new Date(cut.getTime() + 5.5 * 3_600_000).toISOString().replace('Z', '+05:30');
    expect(await list({ target: first.id, since: inIndia })).toEqual(after);

    expect((await list({ actor: 'nobody@example.com' })).records).toEqual([]);
  });

  it('pages newest first by seq with before, without gaps or repeats', async () => {
    for (let index = 0; index < 7; index += 1) {
      app().audit.record({ action: 'test.paging', actor_id: 'paging-test', details: { index } }, NO_REQUEST);
    }
    const all = await list({ actor: 'paging-test' });
    expect(all.records.map((record) => record.details.index)).toEqual([6, 5, 4, 3, 2, 1, 0]);
    expect(all).toMatchObject({ has_more: false, next_before: null });

    const seen: number[] = [];
    let before: number | null = null;
    let pages = 0;
    do {
      const page: AuditList = await list({
        actor: 'paging-test',
        limit: '3',
        ...(before === null ? {} : { before: String(before) }),
      });
      pages += 1;
      seen.push(...page.records.map((record) => record.seq));
      expect(page.has_more).toBe(page.next_before !== null);
      if (page.has_more) expect(page.next_before).toBe(page.records.at(-1)!.seq);
      before = page.next_before;
    } while (before !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual(all.records.map((record) => record.seq));

    // The default page is 50 records.
    const total = (await stored(app())).length;
    expect((await list()).records.length).toBe(Math.min(50, total));
  });

  it('refuses bad query input with 400 VALIDATION_FAILED', async () => {
    const bad = (query: Record<string, string>) =>
      call(app(), admin, 'GET', '/admin/audit', undefined, query);
    expectValidation(await bad({ limit: '0' }), 'limit');
    expectValidation(await bad({ limit: '500' }), 'limit');
    expectValidation(await bad({ limit: 'many' }), 'limit');
    expectValidation(await bad({ since: 'garbage' }), 'since');
    expectValidation(await bad({ until: '2026-13-01' }), 'until');
    expectValidation(await bad({ before: '0' }), 'before');
    expectValidation(await bad({ before: '1.5' }), 'before');
    expectValidation(await bad({ action: 'user.*.x' }), 'action');
    expectValidation(await bad({ action: '' }), 'action');
    expectValidation(await bad({ actor: ' ' }), 'actor');
    expectValidation(await bad({ target: 'a\u0001b' }), 'target');
    expectValidation(await bad({ verbose: 'true' }), 'verbose');
    const now = new Date().toISOString();
    expectValidation(await bad({ since: now, until: now }), 'since');
  });

  it('is for administrators only: members and moderators get 403, anonymous callers 401', async () => {
    for (const url of ['/admin/audit', '/admin/audit/verify']) {
      expectError(await call(app(), member, 'GET', url), 403, 'FORBIDDEN');
      expectError(await call(app(), moderator, 'GET', url), 403, 'FORBIDDEN');
      expectError(await call(app(), undefined, 'GET', url), 401, 'UNAUTHORIZED');
    }
  });
});

describe('GET /admin/audit/verify', () => {
  it('verifies the whole chain and counts every record', async () => {
    const records = await stored(app());
    expect(records.length).toBeGreaterThan(20);
    expectGapFree(records);
    const result = await verifyAs(app(), admin);
    expect(result).toEqual({ ok: true, checked: records.length });
  });

  it('keeps a gap-free chain when many events are recorded at once', async () => {
    const before = (await stored(app())).length;
    // Fifty events from one call stack, and API actions racing them.
    for (let index = 0; index < 50; index += 1) {
      app().audit.record({ action: 'test.burst', actor_id: null, details: { index } });
    }
    await Promise.all(
      Array.from({ length: 10 }, () =>
        call(app(), admin, 'POST', '/admin/users', {
          email: uniqueEmail('burst'),
          name: 'Burst',
          department: 'B',
        }),
      ),
    );
    const records = await stored(app());
    expect(records.length).toBe(before + 60);
    expectGapFree(records);
    const burst = records.filter((record) => record.action === 'test.burst');
    expect(burst.map((record) => record.details.index)).toEqual(burst.map((_, index) => index));
    expect(await verifyAs(app(), admin)).toEqual({ ok: true, checked: records.length });
  });
});

describe('tampering', () => {
  let testApp: TestApp;
  let tamperAdmin: Person;
  const tamperApp = () => testApp.app;
  const verify = () => verifyAs(tamperApp(), tamperAdmin);

  beforeAll(async () => {
    testApp = await buildTestApp(conversationOverrides({ server: { timezone: '+05:30' } }));
    tamperAdmin = await person(tamperApp(), { roles: ['admin'] });
    for (let index = 0; index < 6; index += 1) {
      tamperApp().audit.record({ action: 'test.tamper', actor_id: 'tamper', details: { index } });
    }
    await tamperApp().audit.flush();
  });
  afterAll(async () => {
    await testApp?.close();
  });

  const collection = () => tamperApp().db.collection<AuditRecordDoc>(COLLECTIONS.audit);
  const recordAt = async (seq: number) => (await collection().findOne({ seq }))!;

  it('formats times in the configured offset', async () => {
    const { records } = await listAs(tamperApp(), tamperAdmin, { actor: 'tamper', limit: '1' });
    expect(records[0]!.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+05:30$/);
    const raw = await recordAt(records[0]!.seq);
    expect(new Date(records[0]!.at).getTime()).toBe(raw.at.getTime());
  });

  it('an edited record: hash_mismatch at its seq', async () => {
    const total = (await stored(tamperApp())).length;
    expect(await verify()).toEqual({ ok: true, checked: total });
    const victim = await recordAt(3);
    await collection().updateOne({ seq: 3 }, { $set: { actor_id: 'someone-else' } });
    try {
      expect(await verify()).toEqual({
        ok: false,
        checked: 2,
        broken_at: { seq: 3, id: victim._id, reason: 'hash_mismatch' },
      });
    } finally {
      await collection().updateOne({ seq: 3 }, { $set: { actor_id: victim.actor_id } });
    }
    expect(await verify()).toEqual({ ok: true, checked: total });
  });

  it('an edited record with its hash recomputed: the next record no longer follows it', async () => {
    const total = (await stored(tamperApp())).length;
    const victim = await recordAt(4);
    const forged = { ...victim, details: { index: 99 } };
    forged.hash = auditHash(forged);
    await collection().replaceOne({ seq: 4 }, forged);
    try {
      const next = await recordAt(5);
      expect(await verify()).toEqual({
        ok: false,
        checked: 4,
        broken_at: { seq: 5, id: next._id, reason: 'prev_hash_mismatch' },
      });
    } finally {
      await collection().replaceOne({ seq: 4 }, victim);
    }
    expect(await verify()).toEqual({ ok: true, checked: total });
  });

  it('a deleted record: missing_record at its seq', async () => {
    const total = (await stored(tamperApp())).length;
    const victim = await recordAt(2);
    await collection().deleteOne({ seq: 2 });
    try {
      expect(await verify()).toEqual({
        ok: false,
        checked: 1,
        broken_at: { seq: 2, id: null, reason: 'missing_record' },
      });
    } finally {
      await collection().insertOne(victim);
    }
    expect(await verify()).toEqual({ ok: true, checked: total });
  });

  it('the deleted newest record: missing_record, as this server stored it', async () => {
    const records = await stored(tamperApp());
    const last = records.at(-1)!;
    await collection().deleteOne({ seq: last.seq });
    try {
      expect(await verify()).toEqual({
        ok: false,
        checked: records.length - 1,
        broken_at: { seq: last.seq, id: null, reason: 'missing_record' },
      });
    } finally {
      await collection().insertOne(last);
    }
    expect(await verify()).toEqual({ ok: true, checked: records.length });
  });

  it('mirrors each stored record to audit.log with its seq and hash', async () => {
    tamperApp().audit.record({ action: 'test.mirror', actor_id: 'tamper', target_id: 'mirror-target' });
    const [record] = (await listAs(tamperApp(), tamperAdmin, { action: 'test.mirror' })).records;
    await testApp.closeKeepingLogs();
    const lines = fs
      .readdirSync(testApp.logDir)
      .filter((name) => /^audit\..*\.log$/.test(name))
      .flatMap((name) => fs.readFileSync(path.join(testApp.logDir, name), 'utf8').split('\n'))
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; audit?: Record<string, unknown>; stored?: boolean });
    const mirrored = lines.find((line) => line.audit?.id === record!.id);
    expect(mirrored).toMatchObject({
      msg: 'test.mirror',
      audit: {
        seq: record!.seq,
        hash: record!.hash,
        prev_hash: record!.prev_hash,
        action: 'test.mirror',
        target_id: 'mirror-target',
      },
    });
    // Every record this app stored is there, in order, and none was reported as not stored.
    const seqs = lines.filter((line) => line.audit?.seq !== undefined).map((line) => line.audit!.seq);
    expect(seqs).toEqual(seqs.map((_, index) => index + 1));
    expect(lines.some((line) => line.stored === false)).toBe(false);
  });
});

describe('two app instances on one database', () => {
  it('append concurrently and still form one valid chain', async () => {
    const first = await buildTestApp(conversationOverrides());
    let second: TestApp | undefined;
    try {
      second = await buildTestApp(conversationOverrides(), {
        databaseName: first.databaseName,
        keepDatabase: true,
      });
      const apps = [first.app, second.app];
      await Promise.all(apps.map((instance) => instance.audit.flush()));
      // Counts the writes the database refused because the other instance took the seq first: the test
      // means something only if the instances really collided.
      let conflicts = 0;
      for (const instance of apps) {
        const { repository } = (instance.audit as unknown as { deps: { repository: AuditRepository } }).deps;
        const insert = repository.insert.bind(repository);
        repository.insert = (doc) =>
          insert(doc).catch((error: unknown) => {
            if (isDuplicateKey(error)) conflicts += 1;
            throw error;
          });
      }
      const before = (await stored(first.app)).length;
      // Interleaved, so that each instance keeps finding its head taken by the other.
      for (let index = 0; index < 40; index += 1) {
        for (const [number, instance] of apps.entries()) {
          instance.audit.record({
            action: 'test.cluster',
            actor_id: `instance-${number}`,
            details: { index },
          });
        }
      }
      await Promise.all(apps.map((instance) => instance.audit.flush()));
      const records = await stored(first.app);
      expect(records.length).toBe(before + 80);
      expect(conflicts).toBeGreaterThan(0);
      expectGapFree(records);
      for (const number of [0, 1]) {
        const mine = records.filter((record) => record.actor_id === `instance-${number}`);
        expect(mine.map((record) => record.details.index)).toEqual(mine.map((_, index) => index));
      }
      expect(await first.app.audit.verify(SYSTEM_ACTOR)).toEqual({ ok: true, checked: records.length });
      expect(await second.app.audit.verify(SYSTEM_ACTOR)).toEqual({ ok: true, checked: records.length });
    } finally {
      await second?.close();
      await first.close();
    }
  });
});

describe('the writer on its own', () => {
  /** A fresh database holding only the audit collection, and a log whose lines the test can read. */
  async function standalone(
    database: AuditDatabase,
    repository?: (db: Db) => AuditRepository,
    verifyBatchSize?: number,
  ) {
    const db = app().mongo.db(uniqueDatabaseName());
    for (const index of INDEXES.filter((entry) => entry.collection === COLLECTIONS.audit)) {
      await db.collection(index.collection).createIndex(index.key, index.options);
    }
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const service = new AuditService({
      repository: repository?.(db) ?? new AuditRepository(db),
      database,
      mirror: log,
      log,
      timezone: 'Z',
      verifyBatchSize,
    });
    const records = () =>
      db.collection<AuditRecordDoc>(COLLECTIONS.audit).find({}).sort({ seq: 1 }).toArray();
    return { db, service, lines, records, drop: () => db.dropDatabase() };
  }

  const readyDatabase: AuditDatabase = {
    isReady: true,
    isUp: true,
    whenReady: () => Promise.resolve(),
    markUnavailable: () => undefined,
  };

  it('holds events until the database is ready, then stores them in order', async () => {
    let open!: () => void;
    const gate = {
      isReady: false,
      isUp: false,
      whenReady: () => readiness,
      markUnavailable: () => undefined,
    };
    const readiness = new Promise<void>((resolve) => (open = resolve));
    const { service, records, drop } = await standalone(gate);
    try {
      for (const index of [0, 1, 2])
        service.record({ action: 'test.early', actor_id: null, details: { index } });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await records()).toEqual([]);
      Object.assign(gate, { isReady: true, isUp: true });
      open();
      await service.flush();
      const stored = await records();
      expect(stored.map((record) => record.details.index)).toEqual([0, 1, 2]);
      expectGapFree(stored);
    } finally {
      await drop();
    }
  });

  it('at shutdown without a database, logs what it could not store instead of waiting', async () => {
    const never: AuditDatabase = {
      isReady: false,
      isUp: false,
      whenReady: () => new Promise(() => undefined),
      markUnavailable: () => undefined,
    };
    const { service, lines, drop } = await standalone(never);
    try {
      service.record({
        action: 'test.stranded',
        actor_id: 'u-1',
        target_id: 't-1',
        details: { why: 'no db' },
      });
      await service.close();
      expect(lines.filter((line) => line.stored === false)).toEqual([
        expect.objectContaining({
          msg: 'audit record not stored',
          audit: expect.objectContaining({
            action: 'test.stranded',
            target_id: 't-1',
            details: { why: 'no db' },
          }),
        }),
      ]);
    } finally {
      await drop();
    }
  });

  it('a failed write is logged with its event, and the chain goes on without a gap', async () => {
    let failNext = false;
    const { service, lines, records, drop } = await standalone(readyDatabase, (db) => {
      const repository = new AuditRepository(db);
      const insert = repository.insert.bind(repository);
      repository.insert = (doc) => {
        if (!failNext) return insert(doc);
        failNext = false;
        return Promise.reject(new Error('disk full'));
      };
      return repository;
    });
    try {
      service.record({ action: 'test.before', actor_id: null });
      await service.flush();
      failNext = true;
      service.record({ action: 'test.lost', actor_id: null, details: { keep: 'me' } });
      service.record({ action: 'test.after', actor_id: null });
      await service.flush();
      const stored = await records();
      expect(stored.map((record) => record.action)).toEqual(['test.before', 'test.after']);
      expectGapFree(stored);
      expect(await service.verify(SYSTEM_ACTOR)).toEqual({ ok: true, checked: 2 });
      const lost = lines.filter((line) => line.stored === false);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({
        reason: 'disk full',
        audit: { action: 'test.lost', details: { keep: 'me' } },
      });
    } finally {
      await drop();
    }
  });

  it('verifies across many batches, and finds a break in a later batch', async () => {
    const { db, service, records, drop } = await standalone(readyDatabase, undefined, 3);
    try {
      for (let index = 0; index < 10; index += 1) service.record({ action: 'test.batch', actor_id: null });
      await service.flush();
      expect(await service.verify(SYSTEM_ACTOR)).toEqual({ ok: true, checked: 10 });
      const seventh = (await records())[6]!;
      await db.collection(COLLECTIONS.audit).deleteOne({ seq: 7 });
      expect(await service.verify(SYSTEM_ACTOR)).toEqual({
        ok: false,
        checked: 6,
        broken_at: { seq: 7, id: null, reason: 'missing_record' },
      });
      await db.collection<AuditRecordDoc>(COLLECTIONS.audit).insertOne(seventh);
      await db.collection(COLLECTIONS.audit).updateOne({ seq: 9 }, { $set: { outcome: 'failure' } });
      const ninth = (await records())[8]!;
      expect(await service.verify(SYSTEM_ACTOR)).toEqual({
        ok: false,
        checked: 8,
        broken_at: { seq: 9, id: ninth._id, reason: 'hash_mismatch' },
      });
    } finally {
      await drop();
    }
  });

  it('stores details exactly as they read back (dates as strings, no undefined, odd strings cleaned)', async () => {
    const { service, records, drop } = await standalone(readyDatabase);
    try {
      service.record({
        action: 'test.details',
        actor_id: 'u\u0000x',
        details: {
          when: new Date(0),
          missing: undefined,
          big: 10n,
          text: 'a\ud800b',
          nested: [{ z: 1, a: null }],
        },
      });
      await service.flush();
      const [record] = await records();
      expect(record).toMatchObject({
        actor_id: 'u\ufffdx',
        target_type: null,
        target_id: null,
        request_id: 'internal',
        details: {
          when: '1970-01-01T00:00:00.000Z',
          big: '10',
          text: 'a\ufffdb',
          nested: [{ z: 1, a: null }],
        },
      });
      expect(record!.details).not.toHaveProperty('missing');
      expect(await service.verify(SYSTEM_ACTOR)).toEqual({ ok: true, checked: 1 });
    } finally {
      await drop();
    }
  });
});

describe('the first admin', () => {
  it('is created at start-up with an audit record, stored once the database was ready', async () => {
    const records = await stored(app());
    expect(records[0]).toMatchObject({
      seq: 1,
      prev_hash: GENESIS_HASH,
      action: 'user.create',
      actor_id: 'system',
    });
    const bootstrap = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    expect(records[0]!.target_id).toBe(bootstrap.user.id);
  });
});
