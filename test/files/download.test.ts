// Downloads: who may fetch a file (uploader, members of a channel it was shared in, holders of a signed
// link), and the HTTP around it: ranges, ETag, HEAD, and headers that keep browsers from running it.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLinks } from '../../src/files/links.js';
import { deriveKey } from '../../src/lib/crypto.js';
import { call, createChannel, ok, person, send, type Person } from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { TEST_SECRET, useTestApp } from '../helper.js';
import { filesOverrides, pdfDocument, pngImage, sha256Hex, upload, type UploadedFile } from './fixtures.js';

const { uploadPath, overrides } = filesOverrides();
const getApp = useTestApp(overrides);

let owner: Person;
let member: Person;
let outsider: Person;
let channelId: string;
let shared: UploadedFile;
const text = 'line one\nline two\nline three\n';

beforeAll(async () => {
  const { app } = getApp();
  [owner, member, outsider] = [await person(app), await person(app), await person(app)];
  const channel = await createChannel(app, owner, {
    name: `dl-${Date.now()}`,
    kind: 'group',
    members: [member.id],
  });
  channelId = channel.id;
  shared = await upload(app, owner, 'notes.txt', text);
  await send(app, owner, { channel_id: channelId, content: 'see notes', attachments: [shared.id] });
});

afterAll(() => fs.rmSync(uploadPath, { recursive: true, force: true }));

const get = (url: string, who?: Person, headers: Record<string, string> = {}) =>
  getApp().app.inject({ method: 'GET', url, headers: { ...(who ? who.headers : {}), ...headers } });
const fileUrl = (file: { id: string }) => `/api/v2/files/${file.id}`;

describe('who may download', () => {
  it('the uploader, before and after sharing', async () => {
    const { app } = getApp();
    const unshared = await upload(app, outsider, 'mine.txt', 'private');
    expect((await get(fileUrl(unshared), outsider)).body).toBe('private');
    expect((await get(fileUrl(shared), owner)).body).toBe(text);
  });

  it('a member of a channel it was shared in', async () => {
    const response = await get(fileUrl(shared), member);
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(text);
  });

  it('not a non-member (404 FILE_NOT_FOUND: the id reveals nothing), nor anonymous without a link', async () => {
    expectError(await get(fileUrl(shared), outsider), 404, 'FILE_NOT_FOUND');
    expectError(await get(fileUrl(shared)), 401, 'UNAUTHORIZED');
    expectError(await get('/api/v2/files/not-an-id', owner), 404, 'FILE_NOT_FOUND');
  });

  it('not a member once removed from the channel', async () => {
    const { app } = getApp();
    const leaving = await person(app);
    await ok(call(app, owner, 'POST', `/channels/${channelId}/members`, { members: [leaving.id] }), 200);
    expect((await get(fileUrl(shared), leaving)).statusCode).toBe(200);
    await ok(call(app, owner, 'DELETE', `/channels/${channelId}/members/${leaving.id}`), 204);
    expectError(await get(fileUrl(shared), leaving), 404, 'FILE_NOT_FOUND');
  });

  it('anyone with the signed link, without headers (so <img src> works)', async () => {
    const response = await get(shared.file_url);
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(text);
  });

  it('not with an expired or tampered link (403), and a link for one file opens no other', async () => {
    const key = deriveKey(TEST_SECRET, 'file-link');
    const twoHoursAgo = () => Date.now() - 2 * 3600_000;
    const expired = new FileLinks(key, 60, twoHoursAgo).urlFor(shared.id);
    expectError(await get(expired), 403, 'FILE_LINK_EXPIRED');

    const url = new URL(shared.file_url, 'http://x');
    const sig = url.searchParams.get('sig')!;
    const exp = url.searchParams.get('exp')!;
    const flipped = `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    expectError(await get(`${fileUrl(shared)}?exp=${exp}&sig=${flipped}`), 403, 'FILE_LINK_INVALID');
    expectError(
      await get(`${fileUrl(shared)}?exp=${Number(exp) + 3600}&sig=${sig}`),
      403,
      'FILE_LINK_INVALID',
    );
    expectError(await get(`${fileUrl(shared)}?sig=${sig}`), 403, 'FILE_LINK_INVALID');
    const other = await upload(getApp().app, owner, 'other.txt', 'other');
    expectError(await get(`${fileUrl(other)}?exp=${exp}&sig=${sig}`), 403, 'FILE_LINK_INVALID');
  });
});

describe('HTTP around the bytes', () => {
  it('sends the stored type, nosniff, a sandboxing CSP and an encoded name; inline only for safe images', async () => {
    const { app } = getApp();
    const textResponse = await get(fileUrl(shared), owner);
    expect(textResponse.headers).toMatchObject({
      'content-type': 'text/plain; charset=utf-8',
      'x-content-type-options': 'nosniff',
      'content-disposition': 'attachment; filename=notes.txt',
      'accept-ranges': 'bytes',
      'content-length': String(Buffer.byteLength(text)),
    });
    expect(textResponse.headers['content-security-policy']).toContain('sandbox');

    const image = await upload(app, owner, 'Café été.png', pngImage(4, 4));
    const imageResponse = await get(fileUrl(image), owner);
    expect(imageResponse.headers['content-type']).toBe('image/png');
    expect(imageResponse.headers['content-disposition']).toBe(
      `inline; filename="Caf? ?t?.png"; filename*=UTF-8''Caf%C3%A9%20%C3%A9t%C3%A9.png`,
    );
    expect(sha256Hex(imageResponse.rawPayload)).toBe(image.sha256);

    const pdf = await upload(app, owner, 'report.pdf', pdfDocument());
    expect((await get(fileUrl(pdf), owner)).headers['content-disposition']).toMatch(/^attachment;/);
  });

  it('answers HEAD with the headers and no body', async () => {
    const response = await getApp().app.inject({
      method: 'HEAD',
      url: fileUrl(shared),
      headers: owner.headers,
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-length']).toBe(String(Buffer.byteLength(text)));
    expect(response.headers.etag).toBe(`"${shared.sha256}"`);
    expect(response.body).toBe('');
  });

  it('ETag and If-None-Match: 304 without a body', async () => {
    const first = await get(fileUrl(shared), owner);
    const etag = first.headers.etag as string;
    expect(etag).toBe(`"${shared.sha256}"`);
    const again = await get(fileUrl(shared), owner, { 'if-none-match': `W/"nope", ${etag}` });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect((await get(fileUrl(shared), owner, { 'if-none-match': '"other"' })).statusCode).toBe(200);
  });

  it('one byte range: 206 with Content-Range; suffix and open ranges too', async () => {
    const part = await get(fileUrl(shared), owner, { range: 'bytes=5-7' });
    expect(part.statusCode).toBe(206);
    expect(part.body).toBe(text.slice(5, 8));
    expect(part.headers['content-range']).toBe(`bytes 5-7/${text.length}`);
    expect(part.headers['content-length']).toBe('3');
    expect((await get(fileUrl(shared), owner, { range: 'bytes=-6' })).body).toBe(text.slice(-6));
    expect((await get(fileUrl(shared), owner, { range: 'bytes=20-' })).body).toBe(text.slice(20));
    // An end past the file is cut to the file (RFC 9110), not refused.
    expect((await get(fileUrl(shared), owner, { range: 'bytes=0-999999999999' })).body).toBe(text);
  });

  it('a bad range: 416 RANGE_NOT_SATISFIABLE with Content-Range: bytes */size', async () => {
    for (const range of [
      'bytes=999-',
      'bytes=5-4',
      'bytes=abc',
      'bytes=0-1,5-6',
      'lines=1-2',
      `bytes=${'9'.repeat(300)}-`,
    ]) {
      const response = await get(fileUrl(shared), owner, { range });
      expectError(response, 416, 'RANGE_NOT_SATISFIABLE');
      expect(response.headers['content-range'], range).toBe(`bytes */${text.length}`);
    }
  });

  it('a record whose bytes are gone: 404 FILE_NOT_FOUND (a clean error, not a broken response)', async () => {
    const file = await upload(getApp().app, owner, 'vanishing.txt', 'here today');
    fs.rmSync(path.join(uploadPath, file.id.slice(0, 2), file.id));
    const response = await get(fileUrl(file), owner);
    expectError(response, 404, 'FILE_NOT_FOUND');
    expect(response.headers['content-disposition']).toBeUndefined();
  });

  it('an If-Range that no longer matches sends the whole file', async () => {
    const response = await get(fileUrl(shared), owner, { range: 'bytes=0-3', 'if-range': '"stale"' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(text);
  });
});
