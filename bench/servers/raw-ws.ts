// The baseline for bench:ws: a plain `ws` WebSocketServer (no framework, no authentication, no storage)
// that does the least a chat broadcast needs. Every connection gets a hello; a chat frame from one client
// is turned into a message shaped like the app's (same fields, so the same bytes go out per delivery),
// JSON-stringified once, and the same Buffer is sent to every other connected client; then the sender gets
// its ack, as the app's protocol does. Runs in its own process (see bench/lib/server.ts).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { startProbe } from '../lib/ws-probe.js';
import { announceReady } from '../lib/child.js';

startProbe();

interface ChatFrame {
  type?: string;
  id?: string;
  channel_id?: string;
  content?: string;
  client_id?: string;
}

const server = http.createServer((_request, response) => response.writeHead(426).end());
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 });
let seq = 0;

wss.on('connection', (socket: WebSocket) => {
  const userId = randomUUID().replaceAll('-', '').slice(0, 24);
  socket.send(
    JSON.stringify({
      type: 'hello',
      connection_id: randomUUID(),
      user_id: userId,
      server_time: new Date().toISOString(),
      heartbeat_ms: 30_000,
    }),
  );
  socket.on('message', (data, isBinary) => {
    let frame: ChatFrame;
    try {
      frame = JSON.parse(isBinary ? '' : data.toString()) as ChatFrame;
    } catch {
      socket.send(JSON.stringify({ type: 'error', code: 'INVALID_JSON', message: 'invalid JSON' }));
      return;
    }
    if (frame.type !== 'chat_message' || typeof frame.channel_id !== 'string') {
      socket.send(JSON.stringify({ type: 'error', ref: frame.id, code: 'UNKNOWN_TYPE', message: 'unknown' }));
      return;
    }
    seq += 1;
    const now = new Date().toISOString();
    const message = {
      id: `${frame.channel_id}-${seq}`,
      channel_id: frame.channel_id,
      channel_kind: 'public',
      recipient_id: null,
      sender_id: userId,
      sender_name: 'Bench Sender',
      content: frame.content ?? '',
      message_type: 'text',
      seq,
      change_seq: seq,
      reply_to: null,
      attachments: [],
      reactions: [],
      edited_at: null,
      deleted: false,
      timestamp: now,
      client_id: frame.client_id ?? null,
    };
    const event = Buffer.from(JSON.stringify({ type: 'chat_message', ...message }));
    for (const client of wss.clients) {
      if (client !== socket && client.readyState === client.OPEN) client.send(event, { binary: false });
    }
    if (frame.id !== undefined) {
      socket.send(JSON.stringify({ type: 'ack', ref: frame.id, message, created: true }));
    }
  });
});

server.listen(0, '127.0.0.1', () => announceReady((server.address() as { port: number }).port));
process.once('SIGTERM', () => {
  for (const client of wss.clients) client.close(1001, 'server shutting down');
  wss.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2_000).unref();
});
