// POST /api/v2/admin/users/import: CSV (with a header row) and JSON staff lists, idempotent on email, with a
// per-row report; passwords of existing users are never touched; new users get one-time set-password tokens.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  expectError,
  identityOverrides,
  login,
  loginOk,
  seedAndLogin,
  seedUser,
  strongPassword,
  unique,
  userExists,
} from './fixtures.js';

interface ImportReport {
  summary: { created: number; updated: number; unchanged: number; rejected: number };
  rows: {
    row: number;
    email: string | null;
    outcome: 'created' | 'updated' | 'unchanged' | 'rejected';
    reason?: string;
    user_id?: string;
    set_password_token?: string;
  }[];
}

describe('POST /admin/users/import', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;
  let adminToken: string;

  beforeAll(async () => {
    adminToken = (await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD)).access_token;
  });

  const importCsv = (csv: string, token = adminToken, contentType = 'text/csv') =>
    app().inject({
      method: 'POST',
      url: '/api/v2/admin/users/import',
      headers: { ...bearer(token), 'content-type': contentType },
      payload: csv,
    });
  const importJson = (body: unknown, token = adminToken) =>
    app().inject({
      method: 'POST',
      url: '/api/v2/admin/users/import',
      headers: bearer(token),
      payload: body as object,
    });
  const getUser = async (reference: string) => {
    const response = await app().inject({
      method: 'GET',
      url: `/api/v2/users/${encodeURIComponent(reference)}`,
      headers: bearer(adminToken),
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json();
  };

  it('imports a CSV: creates people with set-password tokens, then a re-import is all unchanged', async () => {
    const tag = unique('c');
    const emails = [`alma.${tag}@example.com`, `bo.${tag}@example.com`, `cy.${tag}@example.com`];
    const csv = [
      'email,name,department,team,designation,roles',
      `${emails[0]},Alma Imported,Finance,Payables,Clerk,`,
      `${emails[1]},Bo Imported,Finance,,,moderator`,
      `"${emails[2]}","Cy, Imported",Legal,Contracts,"Counsel, Senior",admin;moderator`,
      '',
    ].join('\n');
    const response = await importCsv(csv);
    expect(response.statusCode, response.body).toBe(200);
    const report = response.json<ImportReport>();
    expect(report.summary).toEqual({ created: 3, updated: 0, unchanged: 0, rejected: 0 });
    expect(report.rows.map((r) => [r.row, r.email, r.outcome])).toEqual([
      [1, emails[0], 'created'],
      [2, emails[1], 'created'],
      [3, emails[2], 'created'],
    ]);
    for (const row of report.rows) {
      expect(typeof row.user_id).toBe('string');
      expect(typeof row.set_password_token).toBe('string');
    }
    expect(await getUser(emails[0]!)).toMatchObject({
      name: 'Alma Imported',
      department: 'Finance',
      team: 'Payables',
      designation: 'Clerk',
      roles: ['member'],
      status: 'active',
    });
    expect(await getUser(emails[1]!)).toMatchObject({
      team: null,
      designation: null,
      roles: ['moderator', 'member'],
    });
    expect(await getUser(emails[2]!)).toMatchObject({
      name: 'Cy, Imported',
      designation: 'Counsel, Senior',
      roles: ['admin', 'moderator', 'member'],
    });

    // The token from the report lets the new person choose a password, once.
    const password = strongPassword();
    const set = await app().inject({
      method: 'POST',
      url: '/api/v2/auth/set-password',
      payload: { token: report.rows[0]!.set_password_token, password },
    });
    expect(set.statusCode).toBe(204);
    await loginOk(app(), emails[0]!, password);

    const again = await importCsv(csv);
    expect(again.statusCode).toBe(200);
    const second = again.json<ImportReport>();
    expect(second.summary).toEqual({ created: 0, updated: 0, unchanged: 3, rejected: 0 });
    expect(second.rows.map((r) => r.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(second.rows.every((r) => r.set_password_token === undefined)).toBe(true);
    expect(second.rows.map((r) => r.user_id)).toEqual(report.rows.map((r) => r.user_id));
    // Importing did not touch the password just set.
    await loginOk(app(), emails[0]!, password);
  });

  it('accepts text/csv with a charset and a byte-order mark, headers in any case and order', async () => {
    const email = `dee.${unique('c')}@example.com`;
    const csv = `\uFEFFName, EMAIL ,Department\r\nDee Ordered,${email},Support\r\n`;
    const response = await importCsv(csv, adminToken, 'text/csv; charset=utf-8');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<ImportReport>().summary.created).toBe(1);
    expect(await getUser(email)).toMatchObject({ name: 'Dee Ordered', department: 'Support' });
  });

  it('imports JSON as {users:[…]} and as a bare array, with the same idempotency', async () => {
    const tag = unique('j');
    const people = [
      { email: `eve.${tag}@example.com`, name: 'Eve Json', department: 'Research', team: 'Lab' },
      { email: `fin.${tag}@example.com`, name: 'Fin Json', department: 'Research', roles: ['moderator'] },
    ];
    const first = await importJson({ users: people });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json<ImportReport>().summary).toEqual({ created: 2, updated: 0, unchanged: 0, rejected: 0 });

    const bare = await importJson(people);
    expect(bare.statusCode).toBe(200);
    expect(bare.json<ImportReport>().summary).toEqual({ created: 0, updated: 0, unchanged: 2, rejected: 0 });

    // The same people as CSV, email in another case: still the same people, still unchanged.
    const csv = [
      'email,name,department,team,roles',
      `${people[0]!.email.toUpperCase()},Eve Json,Research,Lab,`,
      `${people[1]!.email},Fin Json,Research,,moderator`,
    ].join('\n');
    const asCsv = await importCsv(csv);
    expect(asCsv.json<ImportReport>().summary).toEqual({ created: 0, updated: 0, unchanged: 2, rejected: 0 });
  });

  it('an existing person with changed fields is updated; their password and sessions are untouched', async () => {
    const existing = await seedAndLogin(app(), { name: 'Gus Existing', department: 'Sales', team: 'North' });
    const unchangedPerson = await seedUser(app(), { name: 'Hal Steady', department: 'Sales' });
    const response = await importJson([
      { email: existing.email.toUpperCase(), name: 'Gus Existing', department: 'Marketing', team: 'North' },
      { email: unchangedPerson.email, name: 'Hal Steady', department: 'Sales' },
    ]);
    expect(response.statusCode).toBe(200);
    const report = response.json<ImportReport>();
    expect(report.summary).toEqual({ created: 0, updated: 1, unchanged: 1, rejected: 0 });
    expect(report.rows[0]).toMatchObject({ outcome: 'updated', user_id: existing.user.id });
    expect(report.rows[0]).not.toHaveProperty('set_password_token');
    expect(report.rows[1]).toMatchObject({ outcome: 'unchanged', user_id: unchangedPerson.user.id });

    expect(await getUser(existing.user.id)).toMatchObject({ department: 'Marketing', team: 'North' });
    expect((await login(app(), { email: existing.email, password: existing.password })).statusCode).toBe(200);
    expect(
      (await login(app(), { email: unchangedPerson.email, password: unchangedPerson.password })).statusCode,
    ).toBe(200);
    const stillIn = await app().inject({ method: 'GET', url: '/api/v2/users/me', headers: existing.headers });
    expect(stillIn.statusCode).toBe(200);
  });

  it('columns a list does not have leave those fields alone (an HR export without roles demotes nobody)', async () => {
    const moderator = await seedUser(app(), { roles: ['moderator'], team: 'Blue', designation: 'Lead' });
    const csv = `email,name,department\n${moderator.email},${moderator.user.name},Finance\n`;
    const response = await importCsv(csv);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<ImportReport>().rows[0]).toMatchObject({ outcome: 'updated' });
    const after = await getUser(moderator.email);
    expect(after).toMatchObject({
      department: 'Finance',
      roles: ['moderator', 'member'],
      team: 'Blue',
      designation: 'Lead',
    });

    // A present but empty team column does clear the team.
    const cleared = await importCsv(
      `email,name,department,team\n${moderator.email},${moderator.user.name},Finance,\n`,
    );
    expect(cleared.json<ImportReport>().rows[0]).toMatchObject({ outcome: 'updated' });
    expect(await getUser(moderator.email)).toMatchObject({
      team: null,
      designation: 'Lead',
      roles: ['moderator', 'member'],
    });
  });

  it('rejects bad rows with a reason and imports the rest', async () => {
    const tag = unique('r');
    const good = `good.${tag}@example.com`;
    const dup = `dup.${tag}@example.com`;
    const rows = [
      { email: good, name: 'Good Row', department: 'Ops' },
      { email: 'not-an-email', name: 'Bad Email', department: 'Ops' },
      { email: `noname.${tag}@example.com`, department: 'Ops' },
      { email: `nodept.${tag}@example.com`, name: 'No Dept' },
      { email: `role.${tag}@example.com`, name: 'Bad Role', department: 'Ops', roles: ['root'] },
      { email: `extra.${tag}@example.com`, name: 'Extra', department: 'Ops', password: 'x' },
      { email: `long.${tag}@example.com`, name: 'n'.repeat(201), department: 'Ops' },
      { email: `type.${tag}@example.com`, name: 42, department: 'Ops' },
      { email: `ctrl.${tag}@example.com`, name: 'Bad\u0007Bell', department: 'Ops' },
      'not an object',
      { email: dup, name: 'Dup One', department: 'Ops' },
      { email: dup.toUpperCase(), name: 'Dup Two', department: 'Ops' },
    ];
    const response = await importJson({ users: rows });
    expect(response.statusCode, response.body).toBe(200);
    const report = response.json<ImportReport>();
    expect(report.summary).toEqual({ created: 2, updated: 0, unchanged: 0, rejected: 10 });
    expect(report.rows).toHaveLength(rows.length);
    expect(report.rows.map((r) => r.row)).toEqual(rows.map((_, i) => i + 1));
    const outcome = (n: number) => report.rows[n - 1]!;
    expect(outcome(1).outcome).toBe('created');
    expect(outcome(11).outcome).toBe('created');
    for (const n of [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]) {
      expect(outcome(n).outcome, `row ${n}`).toBe('rejected');
      expect(outcome(n).reason, `row ${n}`).toEqual(expect.any(String));
      expect(outcome(n).reason!.length).toBeGreaterThan(3);
      expect(outcome(n)).not.toHaveProperty('set_password_token');
    }
    expect(outcome(2).reason).toMatch(/email/);
    expect(outcome(3).reason).toMatch(/name/);
    expect(outcome(4).reason).toMatch(/department/);
    expect(outcome(5).reason).toMatch(/role/);
    expect(outcome(6).reason).toMatch(/password/);
    expect(outcome(12).reason).toMatch(/duplicate/);
    // Rejected rows stored nothing; the duplicate kept the first row's data.
    for (const n of [3, 4, 5, 6, 7, 8, 9])
      expect(await userExists(app(), adminToken, (rows[n - 1] as { email: string }).email)).toBe(false);
    expect(await getUser(dup)).toMatchObject({ name: 'Dup One' });
  });

  it('malformed CSV → 400 IMPORT_INVALID, nothing stored', async () => {
    const tag = unique('m');
    const email = `quote.${tag}@example.com`;
    const unclosed = `email,name,department\n${email},"Unclosed quote,Ops\n`;
    expectError(await importCsv(unclosed), 400, 'IMPORT_INVALID');
    const ragged = `email,name,department\nragged.${tag}@example.com,Ragged,Ops,extra,cells\n${email},Ok,Ops\n`;
    expectError(await importCsv(ragged), 400, 'IMPORT_INVALID');
    expect(await userExists(app(), adminToken, email)).toBe(false);
    expect(await userExists(app(), adminToken, `ragged.${tag}@example.com`)).toBe(false);
  });

  it('bodies that are not a staff list → 400, other media types → 415, nothing stored', async () => {
    expectError(await importJson({ users: 'everyone' }), 400, 'VALIDATION_FAILED');
    expectError(await importJson({ people: [] }), 400, 'VALIDATION_FAILED');
    expectError(await importJson({ users: [], extra: 1 }), 400, 'VALIDATION_FAILED');
    const email = `plain.${unique('p')}@example.com`;
    const csvBody = `email,name,department\n${email},Plain,Ops\n`;
    // text/plain is read as a string, which is not a staff list.
    expectError(await importCsv(csvBody, adminToken, 'text/plain'), 400, 'VALIDATION_FAILED');
    expectError(await importCsv(csvBody, adminToken, 'application/xml'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await userExists(app(), adminToken, email)).toBe(false);
  });

  it('an empty list imports nothing', async () => {
    const response = await importJson([]);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      summary: { created: 0, updated: 0, unchanged: 0, rejected: 0 },
      rows: [],
    });
  });

  it('members and moderators → 403 FORBIDDEN, nothing stored', async () => {
    for (const roles of [['member'], ['moderator']] as const) {
      const { tokens } = await seedAndLogin(app(), { roles: [...roles] });
      const email = `sneak.${unique('f')}@example.com`;
      const json = await importJson(
        [{ email, name: 'Sneaky', department: 'Ops', roles: ['admin'] }],
        tokens.access_token,
      );
      expectError(json, 403, 'FORBIDDEN');
      const csv = await importCsv(
        `email,name,department,roles\n${email},Sneaky,Ops,admin\n`,
        tokens.access_token,
      );
      expectError(csv, 403, 'FORBIDDEN');
      expect(await userExists(app(), adminToken, email)).toBe(false);
    }
  });

  it('without a token → 401 UNAUTHORIZED, nothing stored', async () => {
    const email = `anon.${unique('u')}@example.com`;
    const response = await app().inject({
      method: 'POST',
      url: '/api/v2/admin/users/import',
      payload: [{ email, name: 'Anon', department: 'Ops' }],
    });
    expectError(response, 401, 'UNAUTHORIZED');
    expect(await userExists(app(), adminToken, email)).toBe(false);
  });
});

describe('POST /admin/users/import with the only admin in the list', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('a row that cannot be applied is rejected in the report; the other rows are still imported', async () => {
    const adminToken = (await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD)).access_token;
    // The only active admin listed as a plain member: applying that row would leave no admin.
    const tag = unique('a');
    const before = `before.${tag}@example.com`;
    const after = `after.${tag}@example.com`;
    const response = await app().inject({
      method: 'POST',
      url: '/api/v2/admin/users/import',
      headers: bearer(adminToken),
      payload: [
        { email: before, name: 'Before Row', department: 'Ops' },
        { email: ADMIN_EMAIL, name: 'Administrator', department: 'Administration', roles: 'member' },
        { email: after, name: 'After Row', department: 'Ops' },
      ],
    });
    expect(response.statusCode, response.body).toBe(200);
    const report = response.json<ImportReport>();
    expect(report.rows.map((r) => r.outcome)).toEqual(['created', 'rejected', 'created']);
    expect(report.rows[1]!.reason).toEqual(expect.any(String));
    expect(report.summary).toEqual({ created: 2, updated: 0, unchanged: 0, rejected: 1 });
    expect(await userExists(app(), adminToken, after)).toBe(true);
    const self = await app().inject({ method: 'GET', url: '/api/v2/users/me', headers: bearer(adminToken) });
    expect(self.json().roles).toContain('admin');
  });
});
