// @fastify/websocket with our defaults: no compression (it costs memory per socket and opens
// compression-oracle attacks), a frame size cap (larger frames close the socket with 1009), and on
// shutdown every socket hears 1001 so its client reconnects elsewhere.
import websocket from '@fastify/websocket';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { CLOSE } from '../../realtime/connection.js';

export default fp(
  async function websocketPlugin(fastify, opts: { config: Config }) {
    await fastify.register(websocket, {
      options: { maxPayload: opts.config.ws.max_frame_bytes, perMessageDeflate: false },
      preClose(done) {
        for (const client of this.websocketServer.clients)
          client.close(CLOSE.GOING_AWAY, 'server shutting down');
        this.websocketServer.close(() => done());
      },
    });
  },
  { name: 'websocket' },
);
