// The baseline for bench:files: a bare Fastify server (no logger, no auth, no validation, no database) with
// @fastify/multipart and the least a file route does:
//   POST /upload          streams the `file` part with pipeline(part.file, fs.createWriteStream(...)) into a
//                         new file under BENCH_FILES_DIR/uploads, answers 201 with the bytes written
//   GET  /download        fs.createReadStream of BENCH_FILES_DIR/download.bin, with its type and length
// Runs in its own process (see bench/lib/server.ts).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import multipart from '@fastify/multipart';
import Fastify from 'fastify';
import { announceReady } from '../lib/child.js';

const dir = process.env.BENCH_FILES_DIR!;
const uploads = path.join(dir, 'uploads');
const download = path.join(dir, 'download.bin');
fs.mkdirSync(uploads, { recursive: true });

const app = Fastify();
// The plugin's default file size limit is Fastify's bodyLimit (1 MiB); the benchmark sends 10 MiB.
await app.register(multipart, { limits: { fileSize: 64 * 1024 ** 2, files: 1 } });
app.post('/upload', async (request, reply) => {
  const part = await request.file();
  if (!part) return reply.code(400).send({ error: 'no file' });
  const target = path.join(uploads, randomUUID());
  await pipeline(part.file, fs.createWriteStream(target));
  return reply.code(201).send({ id: path.basename(target), file_size: part.file.bytesRead });
});
app.get('/download', async (_request, reply) => {
  const { size } = await fs.promises.stat(download);
  return reply
    .header('content-type', 'application/octet-stream')
    .header('content-length', size)
    .send(fs.createReadStream(download));
});
await app.listen({ host: '127.0.0.1', port: 0 });
announceReady((app.server.address() as { port: number }).port);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
