// GET /api/v2/metrics: valid Prometheus text, figures that move with traffic (HTTP, errors, rate limits,
// messages, database commands, WebSocket frames and deliveries), bounded labels, the token, the switch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createChannel, person, type Person } from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { buildTestApp } from '../helper.js';
import { connect } from '../realtime/client.js';
import { startListening, type ListeningApp } from '../realtime/fixtures.js';
import { upload } from '../files/fixtures.js';

/** Samples by `name{labels}` (labels as printed); throws on any line that is not Prometheus text. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

let listening: ListeningApp;
let alice: Person;
let bob: Person;
let channelId: string;

beforeAll(async () => {
  listening = await startListening({ rate_limit: { messages_per_minute: 5 } });
  [alice, bob] = [await person(listening.app), await person(listening.app)];
  channelId = (
    await createChannel(listening.app, alice, {
      name: `metrics-${Date.now()}`,
      kind: 'group',
      members: [bob.id],
    })
  ).id;
});
afterAll(async () => listening?.testApp.close());

async function scrape(app = listening.app, headers: Record<string, string> = {}) {
  const response = await app.inject({ method: 'GET', url: '/api/v2/metrics', headers });
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text: response.body, samples: parseMetrics(response.body) };
}
const value = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0;

describe('GET /metrics', () => {
  it('is Prometheus text with process defaults and every metric declared', async () => {
    const { text } = await scrape();
    for (const name of [
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
      'http_request_duration_seconds',
      'http_errors_total',
      'http_rate_limited_total',
      'db_operation_duration_seconds',
      'messages_created_total',
      'detection_events_total',
      'ws_connections',
      'ws_users',
      'ws_frames_in_total',
      'ws_frames_out_total',
      'ws_deliveries_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('moves with traffic: requests, errors, messages, database commands', async () => {
    const { app } = listening;
    const before = (await scrape()).samples;
    const sent = await call(app, alice, 'POST', '/messages', { channel_id: channelId, content: 'counted' });
    expect(sent.statusCode).toBe(201);
    expectError(await call(app, alice, 'GET', '/channels/no-such-channel'), 404, 'CHANNEL_NOT_FOUND');
    const after = (await scrape()).samples;
    const sendKey =
      'http_request_duration_seconds_count{route="/api/v2/messages",method="POST",status_code="201"}';
    expect(value(after, sendKey)).toBe(value(before, sendKey) + 1);
    expect(value(after, 'messages_created_total{channel_kind="group"}')).toBe(
      value(before, 'messages_created_total{channel_kind="group"}') + 1,
    );
    expect(value(after, 'http_errors_total{code="CHANNEL_NOT_FOUND"}')).toBe(
      value(before, 'http_errors_total{code="CHANNEL_NOT_FOUND"}') + 1,
    );
    const inserts = 'db_operation_duration_seconds_count{operation="insert",outcome="ok"}';
    expect(value(after, inserts)).toBeGreaterThan(value(before, inserts));
  });

  it('counts rate-limited requests by route', async () => {
    const { app } = listening;
    const sender = await person(app);
    const before = (await scrape()).samples;
    let limited = 0;
    for (let index = 0; index < 7; index += 1) {
      const response = await call(app, sender, 'POST', '/messages', {
        recipient_id: alice.id,
        content: `n${index}`,
      });
      if (response.statusCode === 429) limited += 1;
    }
    expect(limited).toBeGreaterThan(0);
    const key = 'http_rate_limited_total{route="/api/v2/messages"}';
    expect(value((await scrape()).samples, key)).toBe(value(before, key) + limited);
  });

  it('labels routes by template, never by URL or id', async () => {
    const { app } = listening;
    const file = await upload(app, alice, 'label.txt', 'x');
    await app.inject({ method: 'GET', url: `/api/v2/files/${file.id}`, headers: alice.headers });
    await app.inject({ method: 'GET', url: '/api/v2/nothing/here/12345' });
    const { text, samples } = await scrape();
    expect(text).not.toContain(file.id);
    expect(text).not.toContain('12345');
    expect(
      value(
        samples,
        'http_request_duration_seconds_count{route="/api/v2/files/:fileId",method="GET",status_code="200"}',
      ),
    ).toBeGreaterThan(0);
    expect(text).toContain('route="unmatched"');
  });

  it('counts WebSocket connections, frames in and out, and deliveries', async () => {
    const { app, port } = listening;
    const before = (await scrape()).samples;
    const socket = await connect(port, bob);
    try {
      expect((await socket.request({ type: 'ping' })).type).toBe('ack');
      await call(app, alice, 'POST', '/messages', { channel_id: channelId, content: 'to the socket' });
      await socket.waitFor((frame) => frame.type === 'chat_message' && frame.content === 'to the socket');
      const during = (await scrape()).samples;
      expect(value(during, 'ws_connections{kind="socket"}')).toBe(
        value(before, 'ws_connections{kind="socket"}') + 1,
      );
      expect(value(during, 'ws_frames_in_total{type="ping"}')).toBe(
        value(before, 'ws_frames_in_total{type="ping"}') + 1,
      );
      expect(value(during, 'ws_frames_out_total{type="chat_message"}')).toBeGreaterThan(
        value(before, 'ws_frames_out_total{type="chat_message"}'),
      );
      expect(value(during, 'ws_deliveries_total')).toBeGreaterThan(value(before, 'ws_deliveries_total'));
    } finally {
      await socket.close();
    }
  });
});

describe('METRICS_TOKEN and METRICS_ENABLED', () => {
  it('with a token, only a scraper that sends it gets the metrics', async () => {
    const testApp = await buildTestApp({ monitoring: { metrics_token: 'scrape-token-0123456789' } });
    try {
      const { app } = testApp;
      expectError(await app.inject({ method: 'GET', url: '/api/v2/metrics' }), 401, 'UNAUTHORIZED');
      expectError(
        await app.inject({
          method: 'GET',
          url: '/api/v2/metrics',
          headers: { authorization: 'Bearer wrong' },
        }),
        401,
        'UNAUTHORIZED',
      );
      await scrape(app, { authorization: 'Bearer scrape-token-0123456789' });
    } finally {
      await testApp.close();
    }
  });

  it('METRICS_ENABLED=false: no metrics route at all', async () => {
    const testApp = await buildTestApp({ monitoring: { metrics_enabled: false } });
    try {
      expectError(
        await testApp.app.inject({ method: 'GET', url: '/api/v2/metrics' }),
        404,
        'ROUTE_NOT_FOUND',
      );
      expect(testApp.app.metrics).toBeNull();
    } finally {
      await testApp.close();
    }
  });
});
