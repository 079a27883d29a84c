// The first admin: ADMIN_EMAIL / ADMIN_PASSWORD create one when the database has none (logged, never the
// password); a second start on the same database does not create another; a weak ADMIN_PASSWORD creates
// none and the server still starts; an existing account with ADMIN_EMAIL is promoted.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildServer, type BuiltServer } from '../../src/server.js';
import { SYSTEM_ACTOR } from '../../src/services/context.js';
import { testConfigOverrides } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  expectError,
  login,
  loginOk,
  seedUser,
  strongPassword,
  uniqueEmail,
} from './fixtures.js';

type Overrides = Record<string, Record<string, unknown>>;

interface Started extends BuiltServer {
  logDir: string;
  databaseName: string;
}

/**
 * Builds the real server on a chosen database (the helper always picks a new one). `close` keeps the
 * database so a second server can start on it; `dispose` removes the database and the log folder.
 */
async function start(extra: Overrides, databaseName?: string): Promise<Started> {
  const {
    overrides,
    logDir,
    databaseName: fresh,
  } = testConfigOverrides({
    ...extra,
    ...(databaseName ? { database: { name: databaseName } } : {}),
  });
  const server = await buildServer(loadConfig({ env: {}, cwd: logDir, overrides }));
  return { ...server, logDir, databaseName: databaseName ?? fresh };
}

async function dispose(...servers: Started[]): Promise<void> {
  await closeKeepingLogs(...servers);
  for (const server of servers) fs.rmSync(server.logDir, { recursive: true, force: true });
}

/** Drops the shared database (through the first server, while it is still open) and closes every server. */
async function closeKeepingLogs(...servers: Started[]): Promise<void> {
  await servers[0]?.app.db.dropDatabase().catch(() => undefined);
  for (const server of servers) await server.close();
}

/** Every line the server wrote to its log files (call after close: the transport flushes on close). */
function readLogs(logDir: string): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  walk(logDir);
  return files.map((file) => fs.readFileSync(file, 'utf8')).join('\n');
}

const adminUsers = async (server: BuiltServer) =>
  (await server.app.users.listAll(SYSTEM_ACTOR)).filter((user) => user.roles.includes('admin'));

describe('first admin bootstrap', () => {
  it('creates the admin from ADMIN_EMAIL / ADMIN_PASSWORD; it logs in; the password is never logged', async () => {
    const server = await start({ auth: { admin_email: ADMIN_EMAIL, admin_password: ADMIN_PASSWORD } });
    try {
      const session = await loginOk(server.app, ADMIN_EMAIL, ADMIN_PASSWORD);
      expect(session.user).toMatchObject({
        email: ADMIN_EMAIL,
        roles: ['admin', 'member'],
        status: 'active',
      });
      // It can do admin things.
      const create = await server.app.inject({
        method: 'POST',
        url: '/api/v2/admin/users',
        headers: bearer(session.access_token),
        payload: { email: uniqueEmail('first'), name: 'First Hire', department: 'Ops' },
      });
      expect(create.statusCode).toBe(201);
      expect(await adminUsers(server)).toHaveLength(1);
    } finally {
      await closeKeepingLogs(server);
    }
    const logs = readLogs(server.logDir);
    expect(logs).toContain('first admin created');
    expect(logs).toContain(ADMIN_EMAIL);
    expect(logs).not.toContain(ADMIN_PASSWORD);
    await dispose(server);
  });

  it('a second start on the same database does not create a second admin', async () => {
    const first = await start({ auth: { admin_email: ADMIN_EMAIL, admin_password: ADMIN_PASSWORD } });
    const otherEmail = uniqueEmail('second-admin');
    const otherPassword = strongPassword();
    let second: Started | undefined;
    let third: Started | undefined;
    try {
      const firstAdmins = await adminUsers(first);
      expect(firstAdmins.map((user) => user.email)).toEqual([ADMIN_EMAIL]);

      // Same settings again: still the one admin, same account.
      second = await start(
        { auth: { admin_email: ADMIN_EMAIL, admin_password: ADMIN_PASSWORD } },
        first.databaseName,
      );
      expect((await adminUsers(second)).map((user) => user.id)).toEqual(firstAdmins.map((user) => user.id));

      // Other settings: an admin exists, so nobody new is created.
      third = await start(
        { auth: { admin_email: otherEmail, admin_password: otherPassword } },
        first.databaseName,
      );
      expect((await adminUsers(third)).map((user) => user.id)).toEqual(firstAdmins.map((user) => user.id));
      expectError(
        await login(third.app, { email: otherEmail, password: otherPassword }),
        401,
        'INVALID_CREDENTIALS',
      );
      await loginOk(third.app, ADMIN_EMAIL, ADMIN_PASSWORD);
    } finally {
      await dispose(first, ...[second, third].filter((s): s is Started => s !== undefined));
    }
  });

  it('a weak ADMIN_PASSWORD creates no admin, says why in the log, and the server still starts', async () => {
    const weak = 'password1234';
    const server = await start({ auth: { admin_email: ADMIN_EMAIL, admin_password: weak } });
    try {
      const health = await server.app.inject({ method: 'GET', url: '/api/v2/health/ready' });
      expect(health.statusCode).toBe(200);
      expect(await server.app.users.listAll(SYSTEM_ACTOR)).toEqual([]);
      expectError(
        await login(server.app, { email: ADMIN_EMAIL, password: weak }),
        401,
        'INVALID_CREDENTIALS',
      );
    } finally {
      await closeKeepingLogs(server);
    }
    const logs = readLogs(server.logDir);
    expect(logs).toContain('first admin not created');
    expect(logs).not.toContain(weak);
    await dispose(server);
  });

  it('without ADMIN_EMAIL / ADMIN_PASSWORD no admin is created and the server starts', async () => {
    const server = await start({});
    try {
      expect((await server.app.inject({ method: 'GET', url: '/api/v2/health/ready' })).statusCode).toBe(200);
      expect(await server.app.users.listAll(SYSTEM_ACTOR)).toEqual([]);
    } finally {
      await dispose(server);
    }
  });

  it('an existing account with ADMIN_EMAIL is promoted, keeping its own password', async () => {
    const plain = await start({});
    let promoted: Started | undefined;
    try {
      const email = uniqueEmail('boss');
      const existing = await seedUser(plain.app, { email, name: 'Bea Boss', roles: ['member'] });
      expect(await adminUsers(plain)).toEqual([]);

      promoted = await start(
        { auth: { admin_email: email.toUpperCase(), admin_password: ADMIN_PASSWORD } },
        plain.databaseName,
      );
      const admins = await adminUsers(promoted);
      expect(admins.map((user) => user.id)).toEqual([existing.user.id]);
      const session = await loginOk(promoted.app, email, existing.password);
      expect(session.user.roles).toEqual(['admin', 'member']);
      // ADMIN_PASSWORD is only for creating an account, not for replacing someone's password.
      expectError(await login(promoted.app, { email, password: ADMIN_PASSWORD }), 401, 'INVALID_CREDENTIALS');
    } finally {
      await dispose(plain, ...(promoted ? [promoted] : []));
    }
  });
});
