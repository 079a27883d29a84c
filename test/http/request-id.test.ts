// x-request-id: a plain incoming id is kept end to end (so a proxy's id links its logs to ours); anything
// else — absent, too long, or able to forge a log line — is replaced by a fresh UUID.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('x-request-id', () => {
  const testApp = useTestApp();
  const inject = (headers: Record<string, string> = {}, url = '/api/v2/health/live') =>
    testApp().app.inject({ method: 'GET', url, headers });

  it('echoes a plain incoming id on success and in error bodies', async () => {
    const ok = await inject({ 'x-request-id': 'edge-proxy:7f3a.91_b-2' });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['x-request-id']).toBe('edge-proxy:7f3a.91_b-2');

    const missing = await inject({ 'x-request-id': 'trace-404' }, '/api/v2/does-not-exist');
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['x-request-id']).toBe('trace-404');
    expect(missing.json().request_id).toBe('trace-404');
  });

  it('keeps an id of exactly 128 plain characters', async () => {
    const id = 'a'.repeat(128);
    const response = await inject({ 'x-request-id': id });
    expect(response.headers['x-request-id']).toBe(id);
  });

  it('generates a UUID when no id is given, a different one per request', async () => {
    const first = await inject();
    const second = await inject();
    expect(first.headers['x-request-id']).toMatch(UUID);
    expect(second.headers['x-request-id']).toMatch(UUID);
    expect(first.headers['x-request-id']).not.toBe(second.headers['x-request-id']);

    const missing = await inject({}, '/api/v2/does-not-exist');
    expect(missing.headers['x-request-id']).toMatch(UUID);
    expect(missing.json().request_id).toBe(missing.headers['x-request-id']);
  });

  it.each([
    ['a newline that could forge a log line', 'abc\n{"level":"fatal","msg":"forged"}'],
    ['a carriage return', 'abc\rdef'],
    ['spaces', 'has some spaces'],
    ['129 characters', 'b'.repeat(129)],
    ['markup', '<script>alert(1)</script>'],
    ['an empty value', ''],
  ])('replaces an id with %s by a UUID', async (_label, given) => {
    const response = await inject({ 'x-request-id': given }, '/api/v2/does-not-exist');
    const returned = response.headers['x-request-id'];
    expect(returned).toMatch(UUID);
    expect(returned).not.toBe(given);
    expect(response.json().request_id).toBe(returned);
  });

  it('round-trips over a real socket, and replaces an unsafe id there too', async () => {
    const { app } = testApp();
    const server = http.createServer((req, res) => app.routing(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const get = (id: string) =>
      new Promise<{ status: number; id: string | string[] | undefined }>((resolve, reject) => {
        const req = http.get(
          { host: '127.0.0.1', port, path: '/api/v2/health/live', headers: { 'x-request-id': id } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, id: res.headers['x-request-id'] }));
          },
        );
        req.on('error', reject);
      });
    try {
      expect(await get('client-given-id-1')).toEqual({ status: 200, id: 'client-given-id-1' });
      const unsafe = await get('two words; and="quotes"');
      expect(unsafe.status).toBe(200);
      expect(unsafe.id).toMatch(UUID);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
