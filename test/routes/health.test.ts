import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helper.js';

describe('GET /api/v2/health', () => {
  const app = useTestApp();

  it('reports ok with the database engine, its latency and process figures', async () => {
    const response = await app().app.inject({ method: 'GET', url: '/api/v2/health' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.status).toBe('ok');
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.checks.database).toMatchObject({ status: 'up', embedded: false });
    expect(['ferretdb', 'mongodb']).toContain(body.checks.database.engine);
    expect(body.checks.database.latency_ms).toBeGreaterThanOrEqual(0);
    expect(body.system.rss_bytes).toBeGreaterThan(0);
    expect(body.system.heap_used_bytes).toBeGreaterThan(0);
    expect(typeof body.system.event_loop_delay_p99_ms).toBe('number');
  });

  it('answers liveness and readiness', async () => {
    const live = await app().app.inject({ method: 'GET', url: '/api/v2/health/live' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await app().app.inject({ method: 'GET', url: '/api/v2/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
  });
});

describe('GET /api/v2/health with MONITORING_ENABLED=false', () => {
  const app = useTestApp({ monitoring: { enabled: false } });

  it('is reduced to liveness: status, version and uptime only', async () => {
    const response = await app().app.inject({ method: 'GET', url: '/api/v2/health' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual(['status', 'uptime_s', 'version']);
    expect(body.status).toBe('ok');
  });
});
