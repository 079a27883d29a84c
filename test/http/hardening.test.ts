// HTTP hardening a browser or scanner notices: security headers, the CORS allow-list, the published
// OpenAPI document and docs UI, and slow clients cut off on time.
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';

const ALLOWED = 'https://chat.example.com';
const FOREIGN = 'https://evil.example.net';

describe('security headers (plain HTTP deployment)', () => {
  const testApp = useTestApp({ server: { cors_origins: [ALLOWED] } });

  it.each([
    ['a success', '/api/v2/health/live', 200],
    ['an error', '/api/v2/does-not-exist', 404],
  ])('are set on %s', async (_label, url, status) => {
    const response = await testApp().app.inject({ method: 'GET', url });
    expect(response.statusCode).toBe(status);
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['strict-transport-security']).toBeUndefined();
    expect(response.headers['x-powered-by']).toBeUndefined();
  });

  it('gives an allowed origin access-control-allow-origin', async () => {
    const response = await testApp().app.inject({
      method: 'GET',
      url: '/api/v2/health/live',
      headers: { origin: ALLOWED },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(response.headers['access-control-allow-credentials']).toBe('true');
    expect(String(response.headers['access-control-expose-headers']).toLowerCase()).toContain('x-request-id');
  });

  it('gives an origin outside server.cors_origins no access-control-allow-origin', async () => {
    const response = await testApp().app.inject({
      method: 'GET',
      url: '/api/v2/health/live',
      headers: { origin: FOREIGN },
    });
    // Without access-control-allow-origin a browser hands the caller nothing, whatever else is set.
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers a preflight from an allowed origin and refuses one from elsewhere', async () => {
    const preflight = (origin: string) =>
      testApp().app.inject({
        method: 'OPTIONS',
        url: '/api/v2/health',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight(ALLOWED);
    expect(allowed.statusCode).toBeLessThan(300);
    expect(allowed.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(String(allowed.headers['access-control-allow-methods'])).toContain('POST');
    expect(String(allowed.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization');

    const foreign = await preflight(FOREIGN);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('serves a valid OpenAPI 3 document that lists the health routes', async () => {
    const response = await testApp().app.inject({ method: 'GET', url: '/api/v2/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const doc = JSON.parse(response.body);
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(typeof doc.paths).toBe('object');
    const health = doc.paths['/api/v2/health'];
    expect(health?.get).toBeDefined();
    expect(health.get.responses['200']).toBeDefined();
    expect(health.get.responses['503']).toBeDefined();
    expect(doc.paths['/api/v2/health/ready']?.get).toBeDefined();
    expect(doc.paths['/api/v2/health/live']?.get).toBeDefined();
    // Every operation has responses, and every $ref points at a schema the document defines.
    const refs = [...response.body.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    for (const name of refs) expect(doc.components?.schemas?.[name]).toBeDefined();
    for (const [route, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const [method, operation] of Object.entries(item)) {
        expect(operation, `${method} ${route}`).toHaveProperty('responses');
      }
    }
  });

  it('serves the docs UI as HTML', async () => {
    let url = '/api/v2/docs';
    let response = await testApp().app.inject({ method: 'GET', url });
    for (let hops = 0; hops < 5 && response.statusCode >= 300 && response.statusCode < 400; hops++) {
      url = new URL(String(response.headers.location), `http://localhost${url}`).pathname;
      response = await testApp().app.inject({ method: 'GET', url });
    }
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.body.toLowerCase()).toContain('<html');
    expect(response.body.toLowerCase()).toContain('swagger');
  });
});

describe('security headers behind TLS', () => {
  const testApp = useTestApp({ server: { behind_tls: true } });

  it('adds Strict-Transport-Security when server.behind_tls is true', async () => {
    const response = await testApp().app.inject({ method: 'GET', url: '/api/v2/health/live' });
    expect(response.statusCode).toBe(200);
    const hsts = String(response.headers['strict-transport-security']);
    expect(hsts).toMatch(/max-age=\d+/);
    expect(Number(/max-age=(\d+)/.exec(hsts)![1])).toBeGreaterThanOrEqual(15_552_000);
    expect(hsts).toContain('includeSubDomains');
  });

  it('allows no cross-origin caller when server.cors_origins is empty', async () => {
    const response = await testApp().app.inject({
      method: 'GET',
      url: '/api/v2/health/live',
      headers: { origin: ALLOWED },
    });
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('slow clients', () => {
  const testApp = useTestApp({ server: { request_timeout_ms: 1000 } });

  /** Opens a raw connection, writes `data`, and resolves with what came back and when it closed. */
  async function holdOpen(port: number, data: string): Promise<{ answer: string; closedAfterMs: number }> {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk) => (answer += chunk));
    socket.on('error', () => undefined);
    socket.write(data);
    await new Promise((resolve) => socket.once('close', resolve));
    return { answer, closedAfterMs: Date.now() - started };
  }

  it('are cut off with 408 by REQUEST_TIMEOUT_MS, not by Node defaults of a minute or more', async () => {
    const { app } = testApp();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    // Headers that never end (slowloris), and a body shorter than its Content-Length (never ends).
    const [headers, body] = await Promise.all([
      holdOpen(port, 'GET /api/v2/health HTTP/1.1\r\nHost: x\r\nX-Slow: 1'),
      holdOpen(
        port,
        'POST /api/v2/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email"',
      ),
    ]);
    for (const { answer, closedAfterMs } of [headers, body]) {
      expect(answer).toContain('408');
      // Node's defaults would hold these for 30-90 s; a generous bound for a busy machine.
      expect(closedAfterMs).toBeLessThan(10_000);
    }
  });
});
