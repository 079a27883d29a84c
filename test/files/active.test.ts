// Active content (HTML, SVG, JavaScript) when an administrator allows it: accepted, but only ever served
// as a download under a sandboxing CSP, never inline.
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { person, type Person } from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { useTestApp } from '../helper.js';
import { filesOverrides, postForm, upload } from './fixtures.js';

const { uploadPath, overrides } = filesOverrides({
  files: { allow_active_content: true, allowed_extensions: ['html', 'svg', 'js', 'png', 'txt'] },
});
const getApp = useTestApp(overrides);
let user: Person;

beforeAll(async () => {
  user = await person(getApp().app);
});
afterAll(() => fs.rmSync(uploadPath, { recursive: true, force: true }));

it('stores HTML and SVG, and serves them as sandboxed attachments', async () => {
  const { app } = getApp();
  for (const [name, body, type] of [
    ['page.html', '<h1>Hello</h1><script>alert(1)</script>', 'text/html; charset=utf-8'],
    ['logo.svg', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 'image/svg+xml'],
  ] as const) {
    const file = await upload(app, user, name, body);
    expect(file.file_type).toBe(type);
    const response = await app.inject({
      method: 'GET',
      url: `/api/v2/files/${file.id}`,
      headers: user.headers,
    });
    expect(response.headers['content-disposition']).toMatch(/^attachment;/);
    expect(response.headers['content-security-policy']).toContain('sandbox');
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  }
});

it('still checks active content as text (valid UTF-8, no NUL)', async () => {
  const response = await postForm(getApp().app, user, [
    { name: 'file', filename: 'bad.html', body: Buffer.from([0x3c, 0x00, 0x3e]) },
  ]);
  expectError(response, 415, 'FILE_TYPE_NOT_ALLOWED');
});
