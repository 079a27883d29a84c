// The error contract over HTTP: every status ≥ 400 leaves in one shape with a stable code and the request id,
// client mistakes pass through with what went wrong, and anything unexpected is logged and masked.
import fs from 'node:fs';
import path from 'node:path';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync, LightMyRequestResponse as InjectResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { useTestApp } from '../helper.js';

const NOTES = '_test_notes';

/** A JSON route validated with zod (the compilers set in its own encapsulated plugin), and one that throws. */
const testRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.setValidatorCompiler(validatorCompiler);
  fastify.setSerializerCompiler(serializerCompiler);
  const typed = fastify.withTypeProvider<ZodTypeProvider>();
  typed.post(
    '/notes',
    { schema: { body: z.object({ content: z.string().min(1), priority: z.number().int().optional() }) } },
    async (request, reply) => {
      await fastify.db.collection(NOTES).insertOne({ content: request.body.content });
      return reply.code(201).send({ stored: true });
    },
  );
  fastify.get('/boom', async () => {
    throw new Error('secret internal detail');
  });
};

/** Checks the contract's error shape and that the body's request_id is the x-request-id header. */
function expectError(response: InjectResponse, statusCode: number, code: string) {
  expect(response.statusCode).toBe(statusCode);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json();
  expect(body).toMatchObject({ statusCode, code, error: expect.any(String), message: expect.any(String) });
  expect(body.error.length).toBeGreaterThan(0);
  const requestId = response.headers['x-request-id'];
  expect(typeof requestId).toBe('string');
  expect(body.request_id).toBe(requestId);
  return body as {
    statusCode: number;
    code: string;
    error: string;
    message: string;
    details?: { path: string; message: string }[];
    request_id: string;
  };
}

function logFiles(dir: string, pattern: RegExp): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => pattern.test(name))
    .map((name) => path.join(dir, name));
}

function jsonLines(dir: string): Record<string, unknown>[] {
  return logFiles(dir, /^main\..*\.json$/).flatMap((file) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  );
}

describe('error responses', () => {
  const routed = useTestApp({ server: { body_limit: 2048 } }, { routes: testRoutes });

  const storedNotes = () => routed().app.db.collection(NOTES).countDocuments();

  it('accepts a valid body (the test route works)', async () => {
    const response = await routed().app.inject({
      method: 'POST',
      url: '/api/v2/_test/notes',
      payload: { content: 'hello' },
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toEqual({ stored: true });
    expect(typeof response.headers['x-request-id']).toBe('string');
    await routed().app.db.collection(NOTES).deleteMany({});
  });

  it('answers malformed JSON with 400 INVALID_JSON and stores nothing', async () => {
    const response = await routed().app.inject({
      method: 'POST',
      url: '/api/v2/_test/notes',
      headers: { 'content-type': 'application/json' },
      payload: '{"content": "unterminated',
    });
    const body = expectError(response, 400, 'INVALID_JSON');
    expect(body.error).toBe('Bad Request');
    expect(await storedNotes()).toBe(0);
  });

  it('answers an empty JSON body with 400 INVALID_JSON', async () => {
    const response = await routed().app.inject({
      method: 'POST',
      url: '/api/v2/_test/notes',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    expectError(response, 400, 'INVALID_JSON');
    expect(await storedNotes()).toBe(0);
  });

  it('answers a body that fails the schema with 400 VALIDATION_FAILED naming each field', async () => {
    const response = await routed().app.inject({
      method: 'POST',
      url: '/api/v2/_test/notes',
      payload: { content: 42, priority: 'high' },
    });
    const body = expectError(response, 400, 'VALIDATION_FAILED');
    expect(body.details).toEqual(
      expect.arrayContaining([
        { path: 'content', message: expect.any(String) },
        { path: 'priority', message: expect.any(String) },
      ]),
    );
    for (const detail of body.details!) expect(detail.message.length).toBeGreaterThan(0);
    expect(body.message).toContain('content');
    expect(await storedNotes()).toBe(0);
  });

  it('answers a missing required field with VALIDATION_FAILED on that field', async () => {
    const response = await routed().app.inject({ method: 'POST', url: '/api/v2/_test/notes', payload: {} });
    const body = expectError(response, 400, 'VALIDATION_FAILED');
    expect(body.details?.map((detail) => detail.path)).toEqual(['content']);
    expect(await storedNotes()).toBe(0);
  });

  it('answers an unknown route with 404 ROUTE_NOT_FOUND naming the method and path', async () => {
    const response = await routed().app.inject({ method: 'GET', url: '/api/v2/no/such/route?x=1' });
    const body = expectError(response, 404, 'ROUTE_NOT_FOUND');
    expect(body.error).toBe('Not Found');
    expect(body.message).toContain('GET');
    expect(body.message).toContain('/api/v2/no/such/route');
    expect(body.details).toBeUndefined();
  });

  it('answers a body over server.body_limit with 413 PAYLOAD_TOO_LARGE and stores nothing', async () => {
    const response = await routed().app.inject({
      method: 'POST',
      url: '/api/v2/_test/notes',
      payload: { content: 'x'.repeat(4096) },
    });
    const body = expectError(response, 413, 'PAYLOAD_TOO_LARGE');
    expect(body.error).toBe('Payload Too Large');
    expect(await storedNotes()).toBe(0);
  });

  it('answers a content type the route does not take with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await routed().app.inject({
      method: 'POST',
      url: '/api/v2/_test/notes',
      headers: { 'content-type': 'text/xml' },
      payload: '<note><content>hello</content></note>',
    });
    const body = expectError(response, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(body.error).toBe('Unsupported Media Type');
    expect(await storedNotes()).toBe(0);
  });

  it('masks an unexpected error as 500 INTERNAL_ERROR and logs it with the request id', async () => {
    const response = await routed().app.inject({ method: 'GET', url: '/api/v2/_test/boom' });
    const body = expectError(response, 500, 'INTERNAL_ERROR');
    expect(body.error).toBe('Internal Server Error');
    expect(response.body).not.toContain('secret internal detail');
    expect(response.body).not.toMatch(/\bat .*\.(ts|js):\d+/);
    expect(body.message).not.toContain('secret');

    // The log is written by a worker thread: look for the line for a bounded time.
    const deadline = Date.now() + 10_000;
    let failure: Record<string, unknown> | undefined;
    while (!failure && Date.now() < deadline) {
      failure = jsonLines(routed().logDir).find(
        (line) => line.request_id === body.request_id && line.msg === 'request failed',
      );
      if (!failure) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(failure).toBeDefined();
    expect(failure!.level).toBe('error');
    const err = failure!.err as { message?: string; stack?: string };
    expect(err.message).toBe('secret internal detail');
    expect(err.stack).toContain('secret internal detail');
  });
});

describe('404 rate limit', () => {
  const routed = useTestApp({ server: { not_found_per_minute: 3 } });

  it('answers 429 RATE_LIMITED with retry-after once a client exceeds server.not_found_per_minute', async () => {
    const probe = (url: string, remoteAddress = '10.0.0.1') =>
      routed().app.inject({ method: 'GET', url, remoteAddress });
    for (let i = 0; i < 3; i++) expectError(await probe(`/api/v2/scan-${i}`), 404, 'ROUTE_NOT_FOUND');

    const limited = await probe('/api/v2/scan-3');
    const body = expectError(limited, 429, 'RATE_LIMITED');
    expect(body.error).toBe('Too Many Requests');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);

    // Other clients keep their own allowance, and real routes are not limited by it.
    expectError(await probe('/api/v2/scan-4', '10.0.0.2'), 404, 'ROUTE_NOT_FOUND');
    const live = await routed().app.inject({
      method: 'GET',
      url: '/api/v2/health/live',
      remoteAddress: '10.0.0.1',
    });
    expect(live.statusCode).toBe(200);
  });
});
