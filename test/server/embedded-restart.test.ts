// `npm start` with no database configured: the server starts its embedded database under DATA_DIR, and a
// second start finds the data of the first.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const ADMIN = { email: 'first.admin@example.com', password: 'Orchard-lantern-river-93' };

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-embedded-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function startServer(port: number, extraEnv: Record<string, string> = {}) {
  const child = spawn(TSX, [path.join(ROOT, 'src/server.ts')], {
    cwd: workDir,
    // No MONGO_URL: the embedded database is the point of this test.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      LOG_CONSOLE: 'off',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${output}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/v2/health`);
      if (response.status === 200) return { child, health: (await response.json()) as Record<string, any> };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`server did not become healthy: ${output}`);
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

async function login(port: number) {
  const response = await fetch(`http://127.0.0.1:${port}/api/v2/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('embedded database', () => {
  it('starts with no configuration and keeps its data across a restart', async () => {
    const port = await freePort();
    const first = await startServer(port, { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
    expect(first.health.status).toBe('ok');
    expect(first.health.checks.database).toMatchObject({ embedded: true, status: 'up' });
    expect(['ferretdb', 'mongodb']).toContain(first.health.checks.database.engine);

    const session = await login(port);
    expect(session.status).toBe(200);
    const created = await fetch(`http://127.0.0.1:${port}/api/v2/admin/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session.body.access_token}` },
      body: JSON.stringify({ email: 'kept@example.com', name: 'Kept Person', department: 'Ops' }),
    });
    expect(created.status).toBe(201);
    expect(await stop(first.child)).toBe(0);
    expect(fs.existsSync(path.join(workDir, 'data', 'embedded.json'))).toBe(false);

    // Second start: no admin variables this time; the account and the user must still be there.
    const second = await startServer(port);
    expect(second.health.checks.database.embedded).toBe(true);
    const again = await login(port);
    expect(again.status).toBe(200);
    const kept = await fetch(`http://127.0.0.1:${port}/api/v2/users/kept@example.com`, {
      headers: { authorization: `Bearer ${again.body.access_token}` },
    });
    expect(kept.status).toBe(200);
    expect(((await kept.json()) as { name: string }).name).toBe('Kept Person');
    expect(await stop(second.child)).toBe(0);
  }, 240_000);
});
