// Graceful shutdown as clients see it on a real port: WebSocket clients are told to go elsewhere (1001),
// a request already being served still gets its answer, and new requests are refused.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildTestApp } from '../helper.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Running {
  app: FastifyInstance;
  port: number;
  /** The server's graceful close, as buildServer's close() does it: the app, then the logs. */
  close(): Promise<void>;
  /** Resolves when the slow route has started handling a request. */
  slowStarted: Promise<void>;
  /** Lets the slow route answer. */
  releaseSlow(): void;
}

/** The real application listening on a free port, with a test WebSocket route and a slow route. */
async function startServer(): Promise<Running> {
  let releaseSlow!: () => void;
  const released = new Promise<void>((resolve) => (releaseSlow = resolve));
  let slowStartedResolve!: () => void;
  const slowStarted = new Promise<void>((resolve) => (slowStartedResolve = resolve));
  const server = await buildTestApp(
    {},
    {
      routes: async (instance) => {
        instance.get('/ws', { websocket: true }, (socket) => {
          socket.on('message', (data) => socket.send(`echo:${String(data)}`));
        });
        instance.get('/slow', async () => {
          slowStartedResolve();
          await released;
          // Still a real wait after the release, so the answer is produced while the server is closing.
          await new Promise((resolve) => setTimeout(resolve, 500));
          return { finished: true };
        });
      },
    },
  );
  cleanups.push(async () => {
    releaseSlow();
    await server.close();
  });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.app.server.address() as AddressInfo;
  return { app: server.app, port, close: server.closeKeepingLogs, slowStarted, releaseSlow };
}

/** A GET on its own connection; resolves with the status and body, or with the connection error's code. */
function get(port: number, path: string): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

function openSocket(port: number): Promise<WebSocket> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/api/v2/_test/ws`);
  cleanups.push(async () => socket.terminate());
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

function nextMessage(socket: WebSocket): Promise<string> {
  return new Promise((resolve) => socket.once('message', (data) => resolve(String(data))));
}

describe('graceful shutdown', () => {
  it('closes WebSocket clients with 1001 (going away)', async () => {
    const server = await startServer();
    const socket = await openSocket(server.port);
    const reply = nextMessage(socket);
    socket.send('hello');
    expect(await reply).toBe('echo:hello');

    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
    );
    await server.close();
    const { code, reason } = await closed;
    expect(code).toBe(1001);
    expect(reason.length).toBeGreaterThan(0);
    expect(socket.readyState).toBe(WebSocket.CLOSED);
  });

  it('finishes a request in flight with 200 while refusing new ones', async () => {
    const server = await startServer();
    const socket = await openSocket(server.port);
    const socketClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));

    const inFlight = get(server.port, '/api/v2/_test/slow');
    await server.slowStarted;
    let closed = false;
    const closing = server.close().then(() => (closed = true));

    // Shutdown has begun: sockets are told to leave, and new connections are refused.
    expect(await socketClosed).toBe(1001);
    let refused: { status: number; body: string } | { error: string } | undefined;
    for (let attempt = 0; attempt < 100; attempt++) {
      refused = await get(server.port, '/api/v2/health/live');
      if ('error' in refused || refused.status === 503) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refused).toBeDefined();
    if ('error' in refused!) expect(['ECONNREFUSED', 'ECONNRESET']).toContain(refused.error);
    else expect(refused!.status).toBe(503);
    // The server waits for the request it is serving.
    expect(closed).toBe(false);

    server.releaseSlow();
    const answer = await inFlight;
    expect(answer).toEqual({ status: 200, body: JSON.stringify({ finished: true }) });
    await closing;
    expect(closed).toBe(true);
  });
});
