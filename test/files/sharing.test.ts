// Sharing files in messages (REST attachments and the WebSocket file_upload frame) and deleting them.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PublicMessage } from '../../src/services/message-content.js';
import {
  call,
  createChannel,
  ok,
  person,
  recordEvents,
  send,
  type Person,
} from '../conversations/fixtures.js';
import { expectError } from '../identity/fixtures.js';
import { connect } from '../realtime/client.js';
import { startListening, type ListeningApp } from '../realtime/fixtures.js';
import { filesOverrides, filesUnder, pngImage, upload } from './fixtures.js';

const { uploadPath, overrides } = filesOverrides();
let listening: ListeningApp;
let alice: Person;
let bob: Person;
let carol: Person;
let channelId: string;

beforeAll(async () => {
  // startListening merges conversation overrides; the files group carries the upload folder.
  listening = await startListening({ files: overrides.files as Record<string, unknown> });
  const { app } = listening;
  [alice, bob, carol] = [await person(app), await person(app), await person(app)];
  channelId = (
    await createChannel(app, alice, { name: `share-${Date.now()}`, kind: 'group', members: [bob.id] })
  ).id;
});

afterAll(async () => {
  await listening?.testApp.close();
  fs.rmSync(uploadPath, { recursive: true, force: true });
});

const download = (who: Person | undefined, url: string) =>
  listening.app.inject({ method: 'GET', url, headers: who ? who.headers : {} });

describe('attaching files to messages', () => {
  it('fills name, type, size and URL from the stored file, whatever the client claims', async () => {
    const { app } = listening;
    const file = await upload(app, alice, 'diagram.png', pngImage(3, 3));
    const message = await send(app, alice, {
      channel_id: channelId,
      content: 'the diagram',
      attachments: [
        {
          id: file.id,
          file_name: 'invoice.exe',
          file_type: 'text/html',
          file_size: 1,
          file_url: 'https://evil.example/steal',
        },
      ],
    });
    expect(message.attachments).toEqual([
      {
        id: file.id,
        file_name: 'diagram.png',
        file_type: 'image/png',
        file_size: file.file_size,
        file_url: expect.stringMatching(new RegExp(`^/api/v2/files/${file.id}\\?exp=\\d+&sig=`)),
        deleted: false,
      },
    ]);
    // The link in the message works without headers; the member can download with their token too.
    expect((await download(undefined, message.attachments[0]!.file_url!)).statusCode).toBe(200);
    expect((await download(bob, `/api/v2/files/${file.id}`)).statusCode).toBe(200);
  });

  it('grants access by sharing: a member cannot download before, can after', async () => {
    const { app } = listening;
    const file = await upload(app, alice, 'later.txt', 'shared later');
    expectError(await download(bob, `/api/v2/files/${file.id}`), 404, 'FILE_NOT_FOUND');
    await send(app, alice, { channel_id: channelId, content: 'now', attachments: [file.id] });
    expect((await download(bob, `/api/v2/files/${file.id}`)).body).toBe('shared later');
  });

  it('only the uploader may attach a file', async () => {
    const { app } = listening;
    const file = await upload(app, alice, 'mine.txt', 'alice only');
    // Carol cannot see it at all; Bob can, once it is shared with him, but still cannot re-attach it.
    expectError(
      await call(app, carol, 'POST', '/messages', {
        recipient_id: alice.id,
        content: 'x',
        attachments: [file.id],
      }),
      404,
      'FILE_NOT_FOUND',
    );
    await send(app, alice, { channel_id: channelId, content: 'here', attachments: [file.id] });
    expectError(
      await call(app, bob, 'POST', '/messages', {
        recipient_id: carol.id,
        content: 'fwd',
        attachments: [file.id],
      }),
      403,
      'FILE_NOT_OWNED',
    );
    // Nothing was shared with Carol by the refused send.
    expectError(await download(carol, `/api/v2/files/${file.id}`), 404, 'FILE_NOT_FOUND');
  });

  it('an unknown file id: 404 FILE_NOT_FOUND, and no message is stored', async () => {
    const { app } = listening;
    const before = await ok<{ messages: PublicMessage[] }>(
      call(app, alice, 'GET', `/channels/${channelId}/messages`),
    );
    expectError(
      await call(app, alice, 'POST', '/messages', {
        channel_id: channelId,
        content: 'ghost',
        attachments: ['0123456789abcdef01234567'],
      }),
      404,
      'FILE_NOT_FOUND',
    );
    const after = await ok<{ messages: PublicMessage[] }>(
      call(app, alice, 'GET', `/channels/${channelId}/messages`),
    );
    expect(after.messages.at(-1)?.id).toBe(before.messages.at(-1)?.id);
  });

  it('a file message without words shows the file name', async () => {
    const { app } = listening;
    const file = await upload(app, alice, 'minutes.txt', 'minutes');
    const message = await send(app, alice, {
      channel_id: channelId,
      content: '',
      message_type: 'file',
      attachments: [file.id],
    });
    expect(message.content).toBe('minutes.txt');
    expect(message.message_type).toBe('file');
  });

  it('the WebSocket file_upload frame shares a file the same way', async () => {
    const { app, port } = listening;
    const file = await upload(app, alice, 'socket.txt', 'over the socket');
    const aliceSocket = await connect(port, alice);
    const bobSocket = await connect(port, bob);
    try {
      const ack = await aliceSocket.request({ type: 'file_upload', file_id: file.id, channel_id: channelId });
      expect(ack.type).toBe('ack');
      const delivered = await bobSocket.waitFor(
        (frame) =>
          frame.type === 'chat_message' && (frame.attachments as { id: string }[])?.[0]?.id === file.id,
      );
      expect(delivered).toMatchObject({ content: 'socket.txt', message_type: 'file' });
      const url = (delivered.attachments as { file_url: string }[])[0]!.file_url;
      expect((await download(undefined, url)).body).toBe('over the socket');
      const refused = await aliceSocket.request({
        type: 'file_upload',
        file_id: '0123456789abcdef01234567',
        channel_id: channelId,
      });
      expect(refused).toMatchObject({ type: 'error', code: 'FILE_NOT_FOUND' });
    } finally {
      aliceSocket.close();
      bobSocket.close();
    }
  });
});

describe('deleting files', () => {
  it('the uploader deletes: bytes gone, download 404, messages show it deleted, audit recorded', async () => {
    const { app, testApp } = listening;
    const file = await upload(app, alice, 'gone.txt', 'soon gone');
    const message = await send(app, alice, { channel_id: channelId, content: 'bye', attachments: [file.id] });
    const events = recordEvents(app);
    try {
      await ok(call(app, alice, 'DELETE', `/files/${file.id}`), 204);
      expect(filesUnder(uploadPath).some((name) => name.endsWith(file.id))).toBe(false);
      expectError(await download(alice, `/api/v2/files/${file.id}`), 404, 'FILE_NOT_FOUND');
      expectError(await download(undefined, file.file_url), 404, 'FILE_NOT_FOUND');
      const history = await ok<{ messages: PublicMessage[] }>(
        call(app, bob, 'GET', `/channels/${channelId}/messages`),
      );
      const shown = history.messages.find((entry) => entry.id === message.id)!;
      expect(shown.attachments).toEqual([
        expect.objectContaining({ id: file.id, file_name: 'gone.txt', deleted: true, file_url: null }),
      ]);
      // Clients learn of it as an update of the message.
      expect(events.ofType('message_update').some((entry) => entry.event.id === message.id)).toBe(true);
      // Deleted files cannot be attached again, nor deleted twice.
      expectError(
        await call(app, alice, 'POST', '/messages', {
          channel_id: channelId,
          content: 'x',
          attachments: [file.id],
        }),
        404,
        'FILE_NOT_FOUND',
      );
      expectError(await call(app, alice, 'DELETE', `/files/${file.id}`), 404, 'FILE_NOT_FOUND');
    } finally {
      events.stop();
    }
    await vi.waitFor(() => {
      const audit = readLogs(testApp.logDir, 'audit');
      expect(audit).toContain('file.delete');
      expect(audit).toContain(file.id);
    });
  });

  it('a member who is not the uploader may not delete (403); an outsider gets 404', async () => {
    const { app } = listening;
    const file = await upload(app, alice, 'keep.txt', 'keep');
    await send(app, alice, { channel_id: channelId, content: 'keep', attachments: [file.id] });
    expectError(await call(app, bob, 'DELETE', `/files/${file.id}`), 403, 'FORBIDDEN');
    expectError(await call(app, carol, 'DELETE', `/files/${file.id}`), 404, 'FILE_NOT_FOUND');
    expect((await download(alice, `/api/v2/files/${file.id}`)).statusCode).toBe(200);
  });

  it('an administrator may delete anyone’s file (a moderated delete in the audit log)', async () => {
    const { app, testApp } = listening;
    const admin = await person(app, { roles: ['admin'] });
    const file = await upload(app, carol, 'reported.txt', 'bad');
    await ok(call(app, admin, 'DELETE', `/files/${file.id}`), 204);
    expectError(await download(carol, `/api/v2/files/${file.id}`), 404, 'FILE_NOT_FOUND');
    await vi.waitFor(() => expect(readLogs(testApp.logDir, 'audit')).toContain('file.delete_moderated'));
  });
});

function readLogs(dir: string, kind: string): string {
  return fs
    .readdirSync(dir)
    .filter((name) => name.startsWith(kind))
    .map((name) => fs.readFileSync(path.join(dir, name), 'utf8'))
    .join('\n');
}
