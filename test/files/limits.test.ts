// Per-user limits on uploads (storage quota, FILE_UPLOADS_PER_HOUR) and an upload whose client goes
// away in the middle, over a real TCP connection.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { call, ok, person, type Person } from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { startListening, type ListeningApp } from '../realtime/fixtures.js';
import { BOUNDARY, filesOverrides, filesUnder, multipartHeaders, postForm, upload } from './fixtures.js';

const MAX_FILE_SIZE = 40 * 1024;
const QUOTA = 100 * 1024;
const PER_HOUR = 4;
const { uploadPath, overrides } = filesOverrides({
  files: { max_file_size: MAX_FILE_SIZE, user_quota: QUOTA },
  rate_limit: { file_uploads_per_hour: PER_HOUR },
});
let listening: ListeningApp;

beforeAll(async () => {
  listening = await startListening({
    files: overrides.files as Record<string, unknown>,
    rate_limit: overrides.rate_limit as Record<string, unknown>,
  });
});

afterAll(async () => {
  await listening?.testApp.close();
  fs.rmSync(uploadPath, { recursive: true, force: true });
});

const temporaryFiles = () => filesUnder(uploadPath).filter((file) => file.startsWith(`tmp${path.sep}`));

describe('storage quota', () => {
  it('refuses an upload that would pass the quota (413), and frees space when a file is deleted', async () => {
    const { app } = listening;
    const user: Person = await person(app);
    const kept = [];
    for (let index = 0; index < 2; index += 1)
      kept.push(await upload(app, user, `part${index}.txt`, 'q'.repeat(40 * 1024)));
    // 80 KiB used of 100: a 30 KiB file does not fit (20 KiB left); a 20 KiB one does.
    const before = filesUnder(uploadPath).length;
    const refused = await postForm(app, user, [
      { name: 'file', filename: 'big.txt', body: 'q'.repeat(30 * 1024) },
    ]);
    expectError(refused, 413, 'STORAGE_QUOTA_EXCEEDED');
    expect(filesUnder(uploadPath).length).toBe(before);
    await upload(app, user, 'fits.txt', 'q'.repeat(20 * 1024));
    expectError(
      await postForm(app, user, [{ name: 'file', filename: 'one-more.txt', body: 'q' }]),
      413,
      'STORAGE_QUOTA_EXCEEDED',
    );
    await ok(call(app, user, 'DELETE', `/files/${kept[0]!.id}`), 204);
    await upload(app, user, 'again.txt', 'q'.repeat(30 * 1024));
  });
});

describe('FILE_UPLOADS_PER_HOUR', () => {
  it('allows that many uploads per user per hour, then 429 with Retry-After; refused uploads do not count', async () => {
    const { app } = listening;
    const user = await person(app);
    const other = await person(app);
    expectError(
      await postForm(app, user, [{ name: 'file', filename: 'tool.exe', body: 'x' }]),
      415,
      'FILE_TYPE_NOT_ALLOWED',
    );
    for (let index = 0; index < PER_HOUR; index += 1) await upload(app, user, `n${index}.txt`, 'x');
    const limited = await postForm(app, user, [{ name: 'file', filename: 'late.txt', body: 'x' }]);
    const body = expectError(limited, 429, 'RATE_LIMITED');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3000);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(body.retry_after).toBe(retryAfter);
    // Per user: someone else still may.
    await upload(app, other, 'mine.txt', 'x');
  });
});

describe('an upload cut off by the client', () => {
  it('leaves no record and no bytes behind, and the server keeps serving', async () => {
    const { app, port } = listening;
    const user = await person(app);
    const head = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="cut.txt"\r\n` +
        'Content-Type: text/plain\r\n\r\n',
    );
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /api/v2/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${user.headers.authorization}\r\n` +
        `Content-Type: ${multipartHeaders()['content-type']}\r\nContent-Length: ${head.length + 30_000}\r\n\r\n`,
    );
    socket.write(head);
    socket.write('c'.repeat(20_000));
    // The bytes reach a temporary file; then the client disappears.
    await vi.waitFor(() => expect(temporaryFiles().length).toBe(1));
    socket.destroy();
    await vi.waitFor(() => expect(temporaryFiles()).toEqual([]));
    const mine = await app.db.collection('files').countDocuments({ uploader_id: user.id });
    expect(mine).toBe(0);
    await upload(app, user, 'after.txt', 'still fine');
  });
});
