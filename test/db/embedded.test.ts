// The embedded database's guard rails: one server per data folder, and a folder stays with its engine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { EmbeddedDatabaseError, startEmbeddedDatabase } from '../../src/db/embedded.js';

const { config } = loadConfig({ env: { CACHE_DIR: process.env.CACHE_DIR }, cwd: os.tmpdir() });
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-embedded-guard-'));
  dirs.push(dir);
  return dir;
}

const start = (dir: string, prefer: 'auto' | 'ferretdb' = 'ferretdb', warn?: (message: string) => void) =>
  startEmbeddedDatabase({
    dataDir: dir,
    cacheDir: config.database.cache_dir,
    prefer,
    log: () => undefined,
    warn,
  });

describe('embedded database', () => {
  it('refuses a data folder that a running server is using', async () => {
    const dir = dataDir();
    // This test process stands in for the running server that recorded its database there.
    fs.writeFileSync(
      path.join(dir, 'embedded.json'),
      JSON.stringify({ engine: 'ferretdb', url: 'mongodb://127.0.0.1:1/', pid: process.pid }),
    );
    await expect(start(dir)).rejects.toThrow(EmbeddedDatabaseError);
    await expect(start(dir)).rejects.toThrow(/in use by another running Switchboard server/);
    expect(fs.existsSync(path.join(dir, 'ferretdb'))).toBe(false);
  });

  it('ignores the record of a server that is gone, and keeps a FerretDB folder on FerretDB', async () => {
    const dir = dataDir();
    const first = await start(dir);
    await first.stop();
    // A crashed server leaves its record behind; its process no longer exists.
    fs.writeFileSync(
      path.join(dir, 'embedded.json'),
      JSON.stringify({ engine: 'ferretdb', url: first.url, pid: 2 ** 22 + 1 }),
    );
    const again = await start(dir, 'auto');
    try {
      expect(again.engine).toBe('ferretdb');
    } finally {
      await again.stop();
    }
  }, 60_000);

  it('says so, with its last output, when the database server dies on its own', async () => {
    const dir = dataDir();
    const warnings: string[] = [];
    const database = await start(dir, 'ferretdb', (message) => warnings.push(message));
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'ferretdb', 'ferretdb.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      await vi.waitFor(() =>
        expect(warnings).toEqual([
          expect.stringContaining('embedded FerretDB stopped unexpectedly (signal SIGKILL)'),
        ]),
      );
    } finally {
      await database.stop();
    }
    // A stop that was asked for is not a surprise.
    const quiet: string[] = [];
    const again = await start(dir, 'ferretdb', (message) => quiet.push(message));
    await again.stop();
    expect(quiet).toEqual([]);
  }, 60_000);

  it('keeps every acknowledged write when the database server is killed (SQLite synchronous=NORMAL)', async () => {
    const dir = dataDir();
    const written = Array.from({ length: 200 }, (_, n) => ({ _id: `m${n}`, n }));
    const first = await start(dir);
    let client = new MongoClient(first.url, { serverSelectionTimeoutMS: 5_000 });
    try {
      // One acknowledged insert after another, as sends are; the kill comes right after the last answer.
      const messages = client.db('durability').collection<(typeof written)[number]>('messages');
      for (const doc of written) await messages.insertOne(doc);
      const pid = Number(fs.readFileSync(path.join(dir, 'ferretdb', 'ferretdb.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL');
    } finally {
      await client.close(true);
      await first.stop();
    }
    const again = await start(dir);
    client = new MongoClient(again.url, { serverSelectionTimeoutMS: 5_000 });
    try {
      const messages = client.db('durability').collection<(typeof written)[number]>('messages');
      const stored = await messages.find().sort({ n: 1 }).toArray();
      expect(stored).toEqual(written);
    } finally {
      await client.close();
      await again.stop();
    }
  }, 60_000);
});
