// The baseline for bench:http: a bare Fastify server (no logger, no plugins) with one plain route that
// answers what the app's liveness route answers. Runs in its own process (see bench/lib/server.ts).
import Fastify from 'fastify';
import { announceReady } from '../lib/child.js';

const app = Fastify();
app.get('/api/v2/health/live', async () => ({ status: 'ok' }));
await app.listen({ host: '127.0.0.1', port: 0 });
announceReady((app.server.address() as { port: number }).port);
