// Helpers for the files tests: multipart bodies built byte by byte (so a test can send exactly the
// malformed or lying request it means to), uploads through the real app, and small genuine files.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { PublicFile } from '../../src/services/files.js';
import { expect } from 'vitest';
import { conversationOverrides, type Person } from '../conversations/fixtures.js';
import type { InjectResponse } from '../identity/fixtures.js';

export const BOUNDARY = '----switchboard-test-boundary-7MA4YWxkTrZu0gW';

export interface FormPart {
  name: string;
  /** A file part when given (may be any string, including hostile ones). */
  filename?: string;
  contentType?: string;
  body: string | Buffer;
}

/** A multipart/form-data body of exactly these parts. */
export function multipartBody(parts: FormPart[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) head += `; filename="${part.filename}"`;
    head += '\r\n';
    if (part.contentType) head += `Content-Type: ${part.contentType}\r\n`;
    // Browsers send names as raw UTF-8 bytes.
    chunks.push(Buffer.from(`${head}\r\n`, 'utf8'), Buffer.from(part.body), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

export const multipartHeaders = (boundary = BOUNDARY) => ({
  'content-type': `multipart/form-data; boundary=${boundary}`,
});

/** Test config: an upload folder of its own, and the given file settings. */
export function filesOverrides(extra: Record<string, Record<string, unknown>> = {}) {
  const uploadPath = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-test-uploads-'));
  return {
    uploadPath,
    overrides: conversationOverrides({ ...extra, files: { upload_path: uploadPath, ...extra.files } }),
  };
}

export function postForm(
  app: FastifyInstance,
  who: Person | undefined,
  parts: FormPart[],
  headers: Record<string, string> = {},
): Promise<InjectResponse> {
  return app.inject({
    method: 'POST',
    url: '/api/v2/files',
    headers: { ...(who ? who.headers : {}), ...multipartHeaders(), ...headers },
    payload: multipartBody(parts),
  });
}

export type UploadedFile = PublicFile;

export async function upload(
  app: FastifyInstance,
  who: Person,
  filename: string,
  body: string | Buffer,
  extra: FormPart[] = [],
): Promise<UploadedFile> {
  const response = await postForm(app, who, [
    ...extra,
    { name: 'file', filename, contentType: 'application/octet-stream', body },
  ]);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<UploadedFile>();
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A real PNG image (1×1 pixel, or bigger with random pixels so its size can be chosen). */
export function pngImage(width = 1, height = 1): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crcInput = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(crcInput));
    return Buffer.concat([length, crcInput, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y += 1) rows.push(Buffer.concat([Buffer.from([0]), randomBytes(width * 3)]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit += 1) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A minimal but genuine PDF. */
export function pdfDocument(): Buffer {
  return Buffer.from(
    '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
  );
}

/** Every regular file under a folder (relative paths), to check what an upload left on disk. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}
