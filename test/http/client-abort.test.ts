// A client that hangs up in the middle of its request body is the client's doing, not a database outage:
// the database stays "up" (health 200), nothing is stored, and the server says in its log what happened.
// Found by test/reliability/abuse.test.ts, where such a client turned GET /health into a 503.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyError } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { CLIENT_GONE } from '../../src/plugins/app/errors.js';
import { createChannel, person, type Person } from '../conversations/fixtures.js';
import { BOUNDARY, filesOverrides, multipartHeaders } from '../files/fixtures.js';
import { startListening, type ListeningApp } from '../realtime/fixtures.js';

const { uploadPath, overrides } = filesOverrides();
let listening: ListeningApp;
let sender: Person;
let channelId: string;

beforeAll(async () => {
  // A long health-check interval: a wrong "down" would stay visible until a request looks again.
  listening = await startListening({
    files: overrides.files as Record<string, unknown>,
    monitoring: { health_check_interval_s: 3600 },
  });
  sender = await person(listening.app);
  channelId = (await createChannel(listening.app, sender, { kind: 'group', name: `abort-${Date.now()}` })).id;
});

afterAll(async () => {
  await listening?.testApp.close();
  fs.rmSync(uploadPath, { recursive: true, force: true });
});

/** The server's JSON log lines so far. */
function logLines(): { msg?: string; err?: unknown; url?: string }[] {
  const dir = listening.testApp.logDir;
  return fs
    .readdirSync(dir)
    .filter((name) => /^main\..*\.json$/.test(name))
    .flatMap((name) => fs.readFileSync(path.join(dir, name), 'utf8').split('\n').filter(Boolean))
    .map((line) => JSON.parse(line) as { msg?: string });
}

/** Sends a request's head and the start of its body over TCP, then drops the connection. */
async function hangUpMidBody(head: string, bodyStart: string | Buffer, port = listening.port): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(head);
  socket.write(bodyStart);
  // Let the server start reading the body before the connection goes.
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.destroy();
}

/** How many log lines say `msg`. */
const logged = (msg: string) => logLines().filter((line) => line.msg === msg).length;

/**
 * Runs `hangUp`, waits until the server has logged one more hang-up, and checks that the database was
 * never taken for down.
 */
async function expectHangUpHandled(hangUp: () => Promise<void>): Promise<void> {
  const before = logged(CLIENT_GONE);
  await hangUp();
  await vi.waitFor(() => expect(logged(CLIENT_GONE)).toBe(before + 1), { timeout: 5000 });
  expect(listening.app.database.state.status).toBe('up');
  expect(logged('database unreachable')).toBe(0);
}

const requestHead = (url: string, headers: Record<string, string>) =>
  `POST /api/v2${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${sender.headers.authorization}\r\n` +
  Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('') +
  '\r\n';

describe('a client that hangs up mid-body', () => {
  it.each([
    [
      'a JSON body shorter than its Content-Length',
      { 'Content-Type': 'application/json', 'Content-Length': '500' },
    ],
    [
      'a chunked JSON body that never ends',
      { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
    ],
  ])('sending a message with %s leaves the database up and stores nothing', async (_label, headers) => {
    const { app } = listening;
    const before = await app.db.collection('messages').countDocuments({ channel_id: channelId });
    const partial = `{"channel_id":"${channelId}","content":"never fini`;
    const body =
      'Transfer-Encoding' in headers ? `${partial.length.toString(16)}\r\n${partial}\r\n` : partial;
    await expectHangUpHandled(() => hangUpMidBody(requestHead('/messages', headers), body));
    expect((await app.inject({ method: 'GET', url: '/api/v2/health' })).statusCode).toBe(200);
    expect(await app.db.collection('messages').countDocuments({ channel_id: channelId })).toBe(before);
  });

  it('uploading a file leaves the database up', async () => {
    const { app } = listening;
    const partHead =
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="cut.txt"\r\n` +
      'Content-Type: text/plain\r\n\r\n';
    const head = requestHead('/files', {
      ...multipartHeaders(),
      'Content-Length': String(partHead.length + 30_000),
    });
    await expectHangUpHandled(() => hangUpMidBody(head, partHead + 'c'.repeat(10_000)));
    expect(await app.db.collection('files').countDocuments({ uploader_id: sender.id })).toBe(0);
  });
});

describe('the error a hang-up mid-body raises', () => {
  it('is not taken for a database outage, although it is an ECONNRESET', async () => {
    // Fastify alone, so that the error is exactly what its body reader raises.
    const bare = Fastify();
    const seen: FastifyError[] = [];
    bare.setErrorHandler((error: FastifyError, _request, reply) => {
      seen.push(error);
      return reply.code(400).send();
    });
    bare.post('/echo', async (request) => request.body);
    await bare.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = bare.server.address() as net.AddressInfo;
      await hangUpMidBody(
        'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n',
        '{"a":',
        port,
      );
      await vi.waitFor(() => expect(seen).toHaveLength(1));
      expect(seen[0]).toMatchObject({ code: 'ECONNRESET', message: 'aborted' });
      expect(isDatabaseUnavailable(seen[0])).toBe(false);
    } finally {
      await bare.close();
    }
  });
});
