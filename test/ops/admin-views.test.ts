// Administrators' views of the running server: the effective configuration (secrets redacted, with
// sources) and the log files (listing across rotations, tailing with filters, nothing outside LOG_DIR).
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { call, conversationOverrides, ok, person, type Person } from '../conversations/fixtures.js';
import { expectError, expectValidation } from '../identity/fixtures.js';
import { TEST_SECRET, useTestApp } from '../helper.js';

// Small log files, so that a few hundred lines rotate them.
const getApp = useTestApp(conversationOverrides({ logging: { max_size: '4k' } }));
let admin: Person;
let member: Person;

beforeAll(async () => {
  admin = await person(getApp().app, { roles: ['admin'] });
  member = await person(getApp().app);
});

interface LogFileBody {
  name: string;
  log: string;
  format: string;
  size: number;
  current: boolean;
}

const listLogs = async () =>
  (await ok<{ files: LogFileBody[] }>(call(getApp().app, admin, 'GET', '/admin/logs'))).files;
const tail = (name: string, query: Record<string, string> = {}) =>
  call(getApp().app, admin, 'GET', `/admin/logs/${encodeURIComponent(name)}`, undefined, query);

describe('GET /admin/config', () => {
  it('shows the effective configuration with secrets redacted and where each value came from', async () => {
    const { app } = getApp();
    const response = await call(app, admin, 'GET', '/admin/config');
    const body = await ok<{
      config: Record<string, Record<string, unknown>>;
      sources: Record<string, string>;
    }>(response);
    expect(body.config.auth!.secret_key).toBe('[REDACTED]');
    expect(body.config.database!.url).toBe('[REDACTED]');
    expect(body.config.server!.port).toBe(app.config.server.port);
    expect(response.body).not.toContain(TEST_SECRET);
    expect(response.body).not.toContain(app.config.database.url!);
    expect(body.sources['server.port']).toBe('default');
    for (const source of Object.values(body.sources)) {
      expect(['default', 'json', 'yaml', '.env', 'env', 'generated']).toContain(source);
    }
  });

  it('is for administrators only', async () => {
    expectError(await call(getApp().app, member, 'GET', '/admin/config'), 403, 'FORBIDDEN');
  });
});

describe('GET /admin/logs', () => {
  it('lists every log file, rotated ones included, and marks the current one of each log', async () => {
    const { app } = getApp();
    // Enough lines to roll main.json and main.log over at 4 KiB.
    for (let index = 0; index < 60; index += 1)
      app.log.info({ filler: 'x'.repeat(100), index }, 'rotation filler');
    await vi.waitFor(async () => {
      const files = await listLogs();
      expect(files.filter((file) => file.log === 'main.json').length).toBeGreaterThan(1);
    });
    const files = await listLogs();
    for (const log of ['main.log', 'main.json']) {
      expect(files.filter((file) => file.log === log && file.current)).toHaveLength(1);
    }
    expect(files.find((file) => file.log === 'main.log')!.format).toBe('text');
    expect(files.find((file) => file.log === 'main.json')!.format).toBe('json');
    for (const file of files) expect(file.name).toMatch(/^(main|security|audit)\.[\d-]+\.\d+\.(log|json)$/);
  });

  it('tails the current file by its logical name and a rotated file by its own name', async () => {
    const { app } = getApp();
    app.log.info({ marker: 'newest-line' }, 'tail marker');
    await vi.waitFor(async () => {
      const body = await ok<{ lines: string[] }>(tail('main.json', { tail: '5' }));
      expect(body.lines.some((line) => line.includes('newest-line'))).toBe(true);
    });
    const body = await ok<{ file: LogFileBody; lines: string[]; truncated: boolean }>(
      tail('main.json', { tail: '3' }),
    );
    expect(body.file.current).toBe(true);
    expect(body.lines.length).toBeLessThanOrEqual(3);
    for (const line of body.lines) expect(() => JSON.parse(line)).not.toThrow();

    const rotated = (await listLogs()).find((file) => file.log === 'main.json' && !file.current)!;
    const old = await ok<{ file: LogFileBody; lines: string[] }>(tail(rotated.name, { tail: '1000' }));
    expect(old.file.name).toBe(rotated.name);
    expect(old.lines.length).toBeGreaterThan(0);
    expect(old.lines.join('\n').length).toBeLessThanOrEqual(rotated.size);
  });

  it('filters by level, time and text, in JSON and in readable logs', async () => {
    const { app } = getApp();
    const marker = `filter-${Date.now()}`;
    const before = new Date();
    app.log.warn({ marker }, 'a warning for the filter test');
    app.log.info({ marker }, 'an info line for the filter test');
    await vi.waitFor(async () => {
      const body = await ok<{ lines: string[] }>(tail('main.json', { q: marker }));
      expect(body.lines).toHaveLength(2);
    });
    const warnings = await ok<{ lines: string[] }>(tail('main.json', { q: marker, level: 'warn' }));
    expect(warnings.lines).toHaveLength(1);
    expect(JSON.parse(warnings.lines[0]!)).toMatchObject({ level: 'warn', marker });
    expect((await ok<{ lines: string[] }>(tail('main.json', { q: marker, level: 'error' }))).lines).toEqual(
      [],
    );
    const since = await ok<{ lines: string[] }>(
      tail('main.json', { since: before.toISOString(), level: 'warn' }),
    );
    expect(since.lines.some((line) => line.includes(marker))).toBe(true);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await ok<{ lines: string[] }>(tail('main.json', { since: future }))).lines).toEqual([]);
    // The readable log carries the same line, with its level in the prefix.
    const text = await ok<{ lines: string[] }>(tail('main.log', { q: marker, level: 'warn' }));
    expect(text.lines).toHaveLength(1);
    expect(text.lines[0]).toMatch(/ WARN /);
  });

  it('refuses names outside the known log files: traversal, other files and symlinks', async () => {
    const testApp = getApp();
    for (const name of ['../../etc/passwd', 'main', 'notes.txt', 'main.json/../../x', '.main.json']) {
      expectValidation(await tail(name), 'name');
    }
    // A bare ".." is resolved by the URL itself, to a route that does not exist.
    expectError(await tail('..'), 404, 'ROUTE_NOT_FOUND');
    expectError(await tail('main.2000-01-01.1.json'), 404, 'LOG_NOT_FOUND');
    // A link planted in LOG_DIR, named like a log file, is neither listed nor read.
    const link = path.join(testApp.logDir, 'audit.2001-01-01.1.log');
    fs.symlinkSync('/etc/passwd', link);
    try {
      expect((await listLogs()).some((file) => file.name === 'audit.2001-01-01.1.log')).toBe(false);
      expectError(await tail('audit.2001-01-01.1.log'), 404, 'LOG_NOT_FOUND');
    } finally {
      fs.rmSync(link);
    }
  });

  it('checks tail, since and level', async () => {
    expectValidation(await tail('main.json', { tail: '0' }), 'tail');
    expectValidation(await tail('main.json', { tail: '5000' }), 'tail');
    expectValidation(await tail('main.json', { since: 'yesterday' }), 'since');
    expectValidation(await tail('main.json', { level: 'loud' }), 'level');
  });

  it('is for administrators only', async () => {
    expectError(await call(getApp().app, member, 'GET', '/admin/logs'), 403, 'FORBIDDEN');
    expectError(await call(getApp().app, member, 'GET', '/admin/logs/main.json'), 403, 'FORBIDDEN');
  });
});
