// The log files ops read: their names and formats, what goes where, rotation and retention, redaction of
// credentials, and that close() leaves every line on disk. Each test builds its own app and reads the real
// files after close() has flushed them.
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp, type TestAppOptions } from '../helper.js';

type Overrides = Record<string, Record<string, unknown>>;
type LogLine = Record<string, unknown> & { level: string; time: string; msg: string };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The real app for one test: closeKeepingLogs() leaves the files to read; the folder goes after the test. */
async function buildApp(extra: Overrides = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const routed = await buildTestApp(extra, options);
  cleanups.push(routed.close);
  return routed;
}

const FILE_NAME = {
  mainJson: /^main\.\d{4}-\d{2}-\d{2}\.\d+\.json$/,
  mainLog: /^main\.\d{4}-\d{2}-\d{2}\.\d+\.log$/,
  security: /^security\.\d{4}-\d{2}-\d{2}\.\d+\.log$/,
  audit: /^audit\.\d{4}-\d{2}-\d{2}\.\d+\.log$/,
};

/** Files matching `pattern`, oldest first (by the date, then the rotation number, in the name). */
function files(dir: string, pattern: RegExp): string[] {
  const key = (name: string) => {
    const [, date, number] = /\.(\d{4}-\d{2}-\d{2})\.(\d+)\.[a-z]+$/.exec(name)!;
    return `${date}.${number!.padStart(10, '0')}`;
  };
  return fs
    .readdirSync(dir)
    .filter((name) => pattern.test(name))
    .sort((a, b) => key(a).localeCompare(key(b)))
    .map((name) => path.join(dir, name));
}

function lines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch (error) {
    // Retention may remove a rotated file between listing the folder and reading it.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function jsonLines(dir: string, pattern: RegExp): LogLine[] {
  return files(dir, pattern).flatMap((file) => lines(file).map((line) => JSON.parse(line) as LogLine));
}

/** Waits until `condition` holds, polling for at most `timeoutMs` (the worker thread writes the files). */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every file in the folder, rotated ones included, as one string. */
function everything(dir: string): string {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => path.join(dir, name))
    .filter((file) => fs.statSync(file).isFile())
    .map((file) => fs.readFileSync(file, 'utf8'))
    .join('\n');
}

describe('log files', () => {
  it('writes main.json, main.log, security.log and audit.log with one well-formed entry per line', async () => {
    const routed = await buildApp();
    const response = await routed.app.inject({
      method: 'GET',
      url: '/api/v2/openapi.json',
      headers: { 'x-request-id': 'access-line-1' },
    });
    expect(response.statusCode).toBe(200);
    // Health probes are not access-logged while they succeed (they arrive every few seconds).
    const probe = await routed.app.inject({
      method: 'GET',
      url: '/api/v2/health/live',
      headers: { 'x-request-id': 'probe-1' },
    });
    expect(probe.statusCode).toBe(200);
    const generated = await routed.app.inject({ method: 'GET', url: '/api/v2/does-not-exist' });
    routed.loggers.security.info({ user_id: 'u-1', ip: '203.0.113.9' }, 'login failed for test');
    routed.loggers.audit.info({ actor_id: 'admin-1', action: 'user.create' }, 'user created for test');
    await routed.closeKeepingLogs();

    const dir = routed.logDir;
    for (const pattern of Object.values(FILE_NAME)) expect(files(dir, pattern)).toHaveLength(1);

    const main = jsonLines(dir, FILE_NAME.mainJson);
    expect(main.length).toBeGreaterThan(0);
    for (const line of main) {
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(line.level);
      expect(typeof line.time).toBe('string');
      expect(new Date(line.time).toISOString()).toBe(line.time);
      expect(typeof line.msg).toBe('string');
    }

    // One access line per request, carrying the request id (given or generated).
    const access = main.filter((line) => line.msg === 'request completed');
    expect(access.find((line) => line.request_id === 'access-line-1')).toMatchObject({
      level: 'info',
      method: 'GET',
      url: '/api/v2/openapi.json',
      route: '/api/v2/openapi.json',
      status: 200,
      duration_ms: expect.any(Number),
    });
    expect(access.find((line) => line.request_id === generated.headers['x-request-id'])).toMatchObject({
      status: 404,
      url: '/api/v2/does-not-exist',
    });
    expect(main.some((line) => line.msg === 'incoming request')).toBe(false);
    expect(access.some((line) => line.request_id === 'probe-1')).toBe(false);

    // main.log: the same entries, human-readable.
    const text = fs.readFileSync(files(dir, FILE_NAME.mainLog)[0]!, 'utf8');
    expect(text).toMatch(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z INFO {2}request completed \{.*access-line-1.*\}$/m,
    );
    expect(() => JSON.parse(text.split('\n')[0]!)).toThrow();

    // Security and audit events go to their own files only.
    const security = jsonLines(dir, FILE_NAME.security);
    const audit = jsonLines(dir, FILE_NAME.audit);
    expect(security).toHaveLength(1);
    expect(security[0]).toMatchObject({ level: 'info', msg: 'login failed for test', user_id: 'u-1' });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ level: 'info', msg: 'user created for test', action: 'user.create' });
    const mainText = [FILE_NAME.mainJson, FILE_NAME.mainLog]
      .flatMap((pattern) => files(dir, pattern))
      .map((file) => fs.readFileSync(file, 'utf8'))
      .join('\n');
    expect(mainText).not.toContain('login failed for test');
    expect(mainText).not.toContain('user created for test');
  });

  it('writes main.log as one human-readable line per entry, errors with stacks included', async () => {
    const routed = await buildApp();
    const error = new Error('disk nearly full');
    routed.app.log.warn({ err: error, volume: '/var/lib/switchboard' }, 'warning with an error');
    routed.app.log.error({ err: 'plain string cause' }, 'error with a string cause');
    routed.app.log.info({ note: 'first\nsecond' }, 'entry with a newline in a value');
    await routed.closeKeepingLogs();

    const main = jsonLines(routed.logDir, FILE_NAME.mainJson);
    const text = files(routed.logDir, FILE_NAME.mainLog).flatMap((file) => lines(file));
    // A line-oriented reader (grep, tail, the admin log view) sees each entry whole: one line each.
    expect(text).toHaveLength(main.length);
    const entry = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \S/;
    for (const line of text) expect(line).toMatch(entry);
    const warning = text.find((line) => line.includes('warning with an error'));
    expect(warning).toContain('disk nearly full');
    expect(warning).toContain('/var/lib/switchboard');
    expect(text.find((line) => line.includes('error with a string cause'))).toContain('plain string cause');
  });

  it('keeps security and audit events when LOG_LEVEL hides info from main', async () => {
    const routed = await buildApp({ logging: { level: 'warn' } });
    routed.app.log.info('hidden diagnostic line');
    routed.app.log.warn('visible warning line');
    routed.loggers.security.info({ ip: '198.51.100.7' }, 'security event at info');
    routed.loggers.audit.info({ action: 'config.view' }, 'audit event at info');
    await routed.closeKeepingLogs();

    const main = jsonLines(routed.logDir, FILE_NAME.mainJson).map((line) => line.msg);
    expect(main).toContain('visible warning line');
    expect(main).not.toContain('hidden diagnostic line');
    expect(jsonLines(routed.logDir, FILE_NAME.security).map((line) => line.msg)).toEqual([
      'security event at info',
    ]);
    expect(jsonLines(routed.logDir, FILE_NAME.audit).map((line) => line.msg)).toEqual([
      'audit event at info',
    ]);
  });
});

describe('rotation and retention', () => {
  const maxBytes = 1024;
  const retention = 2;
  const filler = 'f'.repeat(200);

  /**
   * Logs lines one at a time, each on disk before the next (so every write that crosses max_size rolls the
   * file, as in a server under normal load), then waits until no roll or clean-up is pending: the newest
   * file of each main log is under max_size and at most `maxFiles` remain.
   */
  async function logAndSettle(routed: TestApp, seqs: number[], maxFiles: number): Promise<void> {
    const onDisk = (seq: number) =>
      jsonLines(routed.logDir, FILE_NAME.mainJson).some(
        (line) => line.msg === 'rotation filler' && line.seq === seq,
      );
    const settled = () =>
      [FILE_NAME.mainJson, FILE_NAME.mainLog].every((pattern) => {
        const all = files(routed.logDir, pattern);
        return all.length > 0 && all.length <= maxFiles && fs.statSync(all.at(-1)!).size < maxBytes;
      });
    for (const seq of seqs) {
      routed.app.log.info({ seq, filler }, 'rotation filler');
      await until(() => onDisk(seq));
    }
    await until(settled);
  }

  it('rotates main.json and main.log by logging.max_size and keeps at most logging.retention old files', async () => {
    const routed = await buildApp({ logging: { max_size: '1k', retention } });
    const total = 40;
    await logAndSettle(
      routed,
      Array.from({ length: total }, (_, i) => i),
      retention + 1,
    );
    await routed.closeKeepingLogs();

    for (const pattern of [FILE_NAME.mainJson, FILE_NAME.mainLog]) {
      const count = files(routed.logDir, pattern).length;
      expect(count).toBeGreaterThanOrEqual(2);
      // pino-roll keeps `retention` files in addition to the one in use.
      expect(count).toBeLessThanOrEqual(retention + 1);
    }
    // The rotation numbers kept are the newest ones: older files were removed, not never written.
    const numbers = files(routed.logDir, FILE_NAME.mainJson).map((file) =>
      Number(/\.(\d+)\.json$/.exec(file)![1]),
    );
    expect(Math.max(...numbers)).toBeGreaterThan(retention + 1);

    // What is kept is the newest part, whole lines in order, ending with the last line written.
    const kept = jsonLines(routed.logDir, FILE_NAME.mainJson)
      .filter((line) => line.msg === 'rotation filler')
      .map((line) => line.seq as number);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(total);
    expect(kept.at(-1)).toBe(total - 1);
    for (let i = 1; i < kept.length; i++) expect(kept[i]).toBe(kept[i - 1]! + 1);
  });

  it('applies logging.retention to files left by earlier runs too', async () => {
    // Five days of logs from an earlier process, as a restarted server finds them.
    const routed = await buildApp(
      { logging: { max_size: '1k', retention } },
      {
        prepareLogDir: (dir) => {
          for (let day = 1; day <= 5; day++) {
            const time = `2020-01-0${day}T00:00:00.000Z`;
            const line = JSON.stringify({ level: 'info', time, msg: 'old run' });
            fs.writeFileSync(path.join(dir, `main.2020-01-0${day}.1.json`), `${line}\n`);
            fs.writeFileSync(path.join(dir, `main.2020-01-0${day}.1.log`), `old run ${day}\n`);
          }
        },
      },
    );
    await logAndSettle(
      routed,
      Array.from({ length: 12 }, (_, i) => i),
      Number.POSITIVE_INFINITY,
    );
    await routed.closeKeepingLogs();

    for (const pattern of [FILE_NAME.mainJson, FILE_NAME.mainLog]) {
      const names = files(routed.logDir, pattern).map((file) => path.basename(file));
      expect(names.length, names.join(', ')).toBeLessThanOrEqual(retention + 1);
      expect(names).not.toContain('main.2020-01-01.1.json');
      expect(names).not.toContain('main.2020-01-01.1.log');
    }
  });
});

describe('redaction', () => {
  const boomRoutes: FastifyPluginAsync = async (fastify) => {
    fastify.get('/boom', async () => {
      throw new Error('failure for the redaction test');
    });
  };

  it('never writes credentials from headers, URLs or logged objects', async () => {
    const routed = await buildApp({}, { routes: boomRoutes });
    const response = await routed.app.inject({
      method: 'GET',
      url: '/api/v2/_test/boom?token=url-sekret-789&page=2',
      headers: {
        authorization: 'Bearer sekret-token-123',
        cookie: 'sid=cookie-sekret-456',
        'user-agent': 'redaction-test-agent',
        'x-request-id': 'redaction-1',
      },
    });
    expect(response.statusCode).toBe(500);
    routed.app.log.info(
      // Redaction paths are explicit (top-level credential keys, request headers): wildcards cost more than
      // the rest of logging, and nothing we log nests credentials deeper.
      { password: 'p4ss', token: 'nested-tok-321', user: { name: 'visible-name' } },
      'credentials given',
    );
    await routed.closeKeepingLogs();

    const all = everything(routed.logDir);
    for (const secret of [
      'sekret-token-123',
      'cookie-sekret-456',
      'url-sekret-789',
      'p4ss',
      'nested-tok-321',
    ])
      expect(all, secret).not.toContain(secret);
    expect(all).toContain('[REDACTED]');

    const main = jsonLines(routed.logDir, FILE_NAME.mainJson);
    const given = main.find((line) => line.msg === 'credentials given');
    expect(given).toMatchObject({
      password: '[REDACTED]',
      token: '[REDACTED]',
      user: { name: 'visible-name' },
    });

    // The 5xx line carries the request's context, headers included, with credentials masked.
    const failed = main.find((line) => line.msg === 'request failed' && line.request_id === 'redaction-1');
    expect(failed).toBeDefined();
    const req = failed!.request as { url?: string; headers?: Record<string, string> };
    expect(req.url).toBe('/api/v2/_test/boom?token=[REDACTED]&page=2');
    expect(req.headers).toMatchObject({
      authorization: '[REDACTED]',
      cookie: '[REDACTED]',
      'user-agent': 'redaction-test-agent',
    });
    const access = main.find((line) => line.msg === 'request completed' && line.request_id === 'redaction-1');
    expect(access).toMatchObject({
      level: 'error',
      status: 500,
      url: '/api/v2/_test/boom?token=[REDACTED]&page=2',
    });
  });
});

describe('flush on close', () => {
  it('has every line logged before close() on disk once close() resolves', async () => {
    const routed = await buildApp();
    const total = 2000;
    for (let i = 0; i < total; i++) routed.app.log.info({ seq: i }, 'burst line');
    routed.app.log.info({ marker: 'final-marker-42' }, 'last line before close');
    await routed.closeKeepingLogs();

    const main = jsonLines(routed.logDir, FILE_NAME.mainJson);
    const burst = main.filter((line) => line.msg === 'burst line').map((line) => line.seq);
    expect(burst).toEqual(Array.from({ length: total }, (_, i) => i));
    const lastIndex = main.findIndex((line) => line.msg === 'last line before close');
    expect(lastIndex).toBeGreaterThan(main.findIndex((line) => line.seq === total - 1));
    expect(main[lastIndex]).toMatchObject({ marker: 'final-marker-42' });
    const text = files(routed.logDir, FILE_NAME.mainLog).map((file) => fs.readFileSync(file, 'utf8'));
    expect(text.join('')).toContain('final-marker-42');
  });
});
