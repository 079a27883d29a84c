// The file store stays consistent on its own: uploads never attached are swept, and at start-up the
// leftovers of a crash (temporary uploads, records without bytes, bytes without records) are repaired.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { PublicMessage } from '../../src/services/message-content.js';
import { call, createChannel, ok, person, send } from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { buildTestApp, uniqueDatabaseName } from '../helper.js';
import { filesOverrides, filesUnder, upload } from './fixtures.js';

const folders: string[] = [];
afterAll(() => folders.forEach((folder) => fs.rmSync(folder, { recursive: true, force: true })));

/** Each test its own upload folder: what one leaves must not look like a stray file to the other. */
function setting() {
  const made = filesOverrides({ files: { orphan_ttl_s: 3600 } });
  folders.push(made.uploadPath);
  return { ...made, storedPath: (id: string) => path.join(made.uploadPath, id.slice(0, 2), id) };
}

const hoursFromNow = (hours: number) => new Date(Date.now() + hours * 3600_000);

describe('unattached uploads', () => {
  it('are removed after files.orphan_ttl_s; attached ones stay', async () => {
    const { overrides, storedPath } = setting();
    const testApp = await buildTestApp(overrides);
    try {
      const { app } = testApp;
      const user = await person(app);
      const channel = await createChannel(app, user, { name: `orphans-${Date.now()}`, kind: 'group' });
      const orphan = await upload(app, user, 'orphan.txt', 'never shared');
      const kept = await upload(app, user, 'kept.txt', 'shared');
      await send(app, user, { channel_id: channel.id, content: 'kept', attachments: [kept.id] });

      expect(await app.files.sweepUnattached(new Date())).toBe(0); // not old enough yet
      expect(await app.files.sweepUnattached(hoursFromNow(2))).toBe(1);
      expect(fs.existsSync(storedPath(orphan.id))).toBe(false);
      expect(fs.existsSync(storedPath(kept.id))).toBe(true);
      expectError(
        await app.inject({ method: 'GET', url: `/api/v2/files/${orphan.id}`, headers: user.headers }),
        404,
        'FILE_NOT_FOUND',
      );
      expect(
        (await app.inject({ method: 'GET', url: `/api/v2/files/${kept.id}`, headers: user.headers })).body,
      ).toBe('shared');
    } finally {
      await testApp.close();
    }
  });
});

describe('start-up after a crash', () => {
  it('sweeps temporary uploads, repairs records without bytes and removes bytes without records', async () => {
    const { overrides, uploadPath, storedPath } = setting();
    const databaseName = uniqueDatabaseName();
    const first = await buildTestApp(overrides, { databaseName, keepDatabase: true });
    const user = await person(first.app);
    const channel = await createChannel(first.app, user, { name: `crash-${Date.now()}`, kind: 'group' });
    const lost = await upload(first.app, user, 'lost.txt', 'bytes will vanish');
    const message = await send(first.app, user, {
      channel_id: channel.id,
      content: 'x',
      attachments: [lost.id],
    });
    const healthy = await upload(first.app, user, 'healthy.txt', 'fine');
    await first.close();

    // What a crash (or an operator) could leave: a half-written upload, a record whose bytes are gone,
    // and bytes whose record was never written. An upload still being written (fresh) must survive.
    const oldTime = hoursFromNow(-1);
    const tempDir = path.join(uploadPath, 'tmp');
    fs.mkdirSync(tempDir, { recursive: true });
    fs.writeFileSync(path.join(tempDir, 'crashed.part'), 'half');
    fs.utimesSync(path.join(tempDir, 'crashed.part'), oldTime, oldTime);
    fs.writeFileSync(path.join(tempDir, 'in-progress.part'), 'still coming');
    fs.rmSync(storedPath(lost.id));
    const strayId = 'ffffffffffffffffffffffff';
    fs.mkdirSync(path.dirname(storedPath(strayId)), { recursive: true });
    fs.writeFileSync(storedPath(strayId), 'nobody knows me');
    fs.utimesSync(storedPath(strayId), oldTime, oldTime);

    const second = await buildTestApp(overrides, { databaseName });
    try {
      const { app } = second;
      await vi.waitFor(() => expect(fs.existsSync(storedPath(strayId))).toBe(false), { timeout: 10_000 });
      await vi.waitFor(() => expect(fs.existsSync(path.join(tempDir, 'crashed.part'))).toBe(false));
      expect(fs.existsSync(path.join(tempDir, 'in-progress.part'))).toBe(true);
      await vi.waitFor(async () => {
        const history = await ok<{ messages: PublicMessage[] }>(
          call(app, user, 'GET', `/channels/${channel.id}/messages`),
        );
        const shown = history.messages.find((entry) => entry.id === message.id)!;
        expect(shown.attachments[0]).toMatchObject({ id: lost.id, deleted: true, file_url: null });
      });
      expectError(
        await app.inject({ method: 'GET', url: `/api/v2/files/${lost.id}`, headers: user.headers }),
        404,
        'FILE_NOT_FOUND',
      );
      expect(
        (await app.inject({ method: 'GET', url: `/api/v2/files/${healthy.id}`, headers: user.headers })).body,
      ).toBe('fine');
      expect(filesUnder(uploadPath).filter((name) => !name.startsWith('tmp'))).toEqual([
        path.join(healthy.id.slice(0, 2), healthy.id),
      ]);
    } finally {
      await second.close();
    }
  });
});
