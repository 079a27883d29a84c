// Ops alerts: one warning (log line and `ops_alert` to connected admins) when a figure crosses its
// threshold, quiet while it flaps, a clear once it is well below.
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Audience, RealtimeEvent } from '../../src/services/events.js';
import { OpsAlerts, type AlertRule } from '../../src/services/ops-alerts.js';
import { conversationOverrides, person } from '../conversations/fixtures.js';
import { buildTestApp, type TestApp } from '../helper.js';
import { connect } from '../realtime/client.js';

function recorder() {
  const published: { event: RealtimeEvent; audience: Audience }[] = [];
  const lines: string[] = [];
  return {
    published,
    lines,
    events: {
      publish: (event: RealtimeEvent, audience: Audience) => void published.push({ event, audience }),
    },
    log: {
      warn: (_: object, message: string) => void lines.push(`WARN ${message}`),
      info: (_: object, message: string) => void lines.push(`INFO ${message}`),
    },
  };
}

describe('OpsAlerts', () => {
  it('raises once above the threshold, stays quiet while the value flaps, clears well below it', async () => {
    let value: number | null = 10;
    const rule: AlertRule = {
      name: 'error_rate',
      what: 'server errors per minute',
      threshold: 100,
      read: () => value,
    };
    const seen = recorder();
    const alerts = new OpsAlerts([rule], {
      events: seen.events,
      adminIds: async () => ['admin-1'],
      log: seen.log,
    });
    expect(await alerts.evaluate()).toEqual([]);
    value = 150;
    expect(await alerts.evaluate()).toEqual([
      expect.objectContaining({ alert: 'error_rate', state: 'raised', value: 150 }),
    ]);
    for (const flapping of [95, 130, 81, 120, 99]) {
      value = flapping;
      expect(await alerts.evaluate()).toEqual([]);
    }
    value = 79;
    expect(await alerts.evaluate()).toEqual([expect.objectContaining({ state: 'cleared', value: 79 })]);
    value = null; // unknown: no change
    expect(await alerts.evaluate()).toEqual([]);
    value = 101;
    expect(await alerts.evaluate()).toEqual([expect.objectContaining({ state: 'raised' })]);
    expect(seen.lines.filter((line) => line.startsWith('WARN'))).toHaveLength(2);
    expect(seen.published.map(({ event, audience }) => [event.type, event.state, audience])).toEqual([
      ['ops_alert', 'raised', { kind: 'users', userIds: ['admin-1'] }],
      ['ops_alert', 'cleared', { kind: 'users', userIds: ['admin-1'] }],
      ['ops_alert', 'raised', { kind: 'users', userIds: ['admin-1'] }],
    ]);
  });

  it('skips a rule whose threshold is 0, and still logs when the admins cannot be read', async () => {
    const seen = recorder();
    const alerts = new OpsAlerts(
      [
        { name: 'off', what: 'x', threshold: 0, read: () => 1e9 },
        { name: 'database_latency', what: 'database ping (ms)', threshold: 10, read: () => 50 },
      ],
      {
        events: seen.events,
        adminIds: async () => {
          throw new Error('database down');
        },
        log: seen.log,
      },
    );
    expect((await alerts.evaluate()).map((alert) => alert.alert)).toEqual(['database_latency']);
    expect(seen.published).toEqual([]);
    expect(seen.lines).toEqual([
      'WARN ops alert: database ping (ms) 50 above 10',
      'WARN ops alert not sent to admins: their ids could not be read',
    ]);
  });
});

describe('ops alerts in the server', () => {
  const failing: FastifyPluginAsync = async (instance) => {
    instance.get('/fail', { config: { public: true } }, async () => {
      throw new Error('a bug, on purpose');
    });
  };
  let testApp: TestApp;
  let port: number;

  beforeAll(async () => {
    // A long check interval: the test runs the check itself.
    testApp = await buildTestApp(
      conversationOverrides({ monitoring: { alert_error_rate_per_min: 2, health_check_interval_s: 3600 } }),
      { routes: failing },
    );
    await testApp.app.listen({ host: '127.0.0.1', port: 0 });
    port = (testApp.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => testApp?.close());

  it('warns in the log and tells connected admins (not members) once', async () => {
    const { app } = testApp;
    const admin = await person(app, { roles: ['admin'] });
    const member = await person(app);
    const adminSocket = await connect(port, admin);
    const memberSocket = await connect(port, member);
    try {
      for (let index = 0; index < 3; index += 1) {
        expect((await app.inject({ method: 'GET', url: '/api/v2/_test/fail' })).statusCode).toBe(500);
      }
      const raised = await app.opsAlerts!.evaluate();
      expect(raised).toEqual([
        expect.objectContaining({ alert: 'error_rate', state: 'raised', value: 3, threshold: 2 }),
      ]);
      const frame = await adminSocket.waitFor((f) => f.type === 'ops_alert');
      expect(frame).toMatchObject({ alert: 'error_rate', state: 'raised', value: 3 });
      // The same state again: nothing new.
      expect(await app.opsAlerts!.evaluate()).toEqual([]);
      await memberSocket.request({ type: 'ping' }); // anything for the member would have arrived first
      expect(memberSocket.frames.some((f) => f.type === 'ops_alert')).toBe(false);
      await vi.waitFor(() => {
        const log = fs
          .readdirSync(testApp.logDir)
          .filter((name) => name.startsWith('main.') && name.endsWith('.log'))
          .map((name) => fs.readFileSync(path.join(testApp.logDir, name), 'utf8'))
          .join('\n');
        expect(log.match(/ops alert: server errors per minute 3 above 2/g)).toHaveLength(1);
      });
    } finally {
      await adminSocket.close();
      await memberSocket.close();
    }
  });
});
