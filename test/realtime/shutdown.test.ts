// The hub at the edges of the server's life: the optional WS_HOST/WS_PORT listener, and shutdown, which
// tells every client to reconnect elsewhere (1001 with a reason).
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { listenForSockets } from '../../src/server.js';
import { person } from '../conversations/fixtures.js';
import { connect } from './client.js';
import { startListening } from './fixtures.js';

describe('the WebSocket listener and shutdown', () => {
  it('serves sockets on a second port too, and closes all of them with 1001 on shutdown', async () => {
    const { app, testApp, port } = await startListening();
    try {
      const alice = await person(app);
      const listener = await listenForSockets(testApp, '127.0.0.1', 0);
      const wsPort = (listener.address() as AddressInfo).port;
      expect(wsPort).not.toBe(port);
      const onHttpPort = await connect(port, alice);
      const onWsPort = await connect(wsPort, alice);
      expect(onWsPort.frames[0]).toMatchObject({ type: 'hello', user_id: alice.id });
      // Both ports reach the same hub: a ping answered on the second one proves the frames flow.
      expect((await onWsPort.request({ type: 'ping' })).type).toBe('ack');

      await testApp.close();
      for (const socket of [onHttpPort, onWsPort]) {
        expect(await socket.closed).toBe(1001);
        expect(socket.closeReason).toBe('server shutting down');
      }
      expect(listener.listening).toBe(false);
    } finally {
      await testApp.close();
    }
  });
});
