// Switchboard for bench:ws: bench/servers/app.ts (the real server, `npm start`'s code path) with the
// benchmark's probe (event-loop delay, memory; see ws-probe.ts) started first in the same process.
import { startProbe } from './ws-probe.js';

startProbe();
await import('../servers/app.js');
