// Switchboard as `npm start` runs it (src/server.ts `start()`), configured by the environment the
// benchmark gives it; prints its port once listening. SIGTERM runs the server's own graceful shutdown.
import { start } from '../../src/server.js';
import { announceReady } from '../lib/child.js';

const server = await start();
announceReady((server.app.server.address() as { port: number }).port);
