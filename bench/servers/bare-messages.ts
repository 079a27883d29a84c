// The baseline for bench:messages: a bare Fastify server (no logger, no plugins, no auth, no validation)
// with the database calls the app's routes end in, on the same database server:
//   POST /messages  one insertOne of a message document shaped like the app's (id "<channel>-<seq>"),
//                   into a collection with the app's message indexes (so index upkeep costs the same)
//   GET  /messages  the 50 newest messages of a channel, read the way the app's repository reads them:
//                   one indexed range find on MongoDB; on FerretDB, which indexes nothing but ids, id
//                   lookups (a plain find there decodes the whole collection and takes seconds)
import { MongoClient } from 'mongodb';
import Fastify from 'fastify';
import { COLLECTIONS, INDEXES } from '../../src/db/collections.js';
import { MessagesRepository, type MessageDoc } from '../../src/repositories/messages.js';
import { storedMessage } from '../../src/services/message-content.js';
import { seedMessage } from '../lib/messages.js';
import { announceReady } from '../lib/child.js';

const client = new MongoClient(process.env.MONGO_URL!, { maxPoolSize: 20 });
const db = client.db(process.env.DB_NAME!);
const messages = db.collection<MessageDoc>(COLLECTIONS.messages);
for (const index of INDEXES.filter((entry) => entry.collection === COLLECTIONS.messages)) {
  await messages.createIndex(index.key, index.options);
}

const info = await db.admin().command({ buildInfo: 1 });
const repository = new MessagesRepository(db, () => typeof info.ferretdbVersion === 'string');
const lastSeq = new Map<string, number>();
const app = Fastify();
app.post<{ Body: { channel_id: string; content: string } }>('/messages', async (request, reply) => {
  const seq = (lastSeq.get(request.body.channel_id) ?? 0) + 1;
  lastSeq.set(request.body.channel_id, seq);
  const doc = storedMessage(seedMessage(request.body.channel_id, request.body.content, new Date()), seq, seq);
  await messages.insertOne(doc);
  return reply.code(201).send(doc);
});
app.get<{ Querystring: { channel_id: string } }>('/messages', async (request) => {
  const last = lastSeq.get(request.query.channel_id) ?? 0;
  return repository.bySeqRange(request.query.channel_id, Math.max(1, last - 49), last);
});
app.addHook('onClose', async () => client.close());
await app.listen({ host: '127.0.0.1', port: 0 });
announceReady((app.server.address() as { port: number }).port);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
