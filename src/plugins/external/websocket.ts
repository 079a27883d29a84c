// @fastify/websocket with our defaults: no compression (it costs memory per socket and opens
// compression-oracle attacks), a frame size cap, and shutdown that tells clients to reconnect elsewhere.
import websocket from '@fastify/websocket';
import fp from 'fastify-plugin';

export const MAX_FRAME_BYTES = 64 * 1024;
export const CLOSE_GOING_AWAY = 1001;

export default fp(
  async function websocketPlugin(fastify) {
    await fastify.register(websocket, {
      options: { maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false },
      preClose(done) {
        for (const client of this.websocketServer.clients)
          client.close(CLOSE_GOING_AWAY, 'server shutting down');
        this.websocketServer.close(() => done());
      },
    });
  },
  { name: 'websocket' },
);
