// The frame protocol: every bad frame gets an error with a stable code and the socket stays open; a frame
// with an id gets exactly one answer; sends over the socket are the REST sends (idempotent, validated,
// permission-checked, counted against the same per-user limit).
import { describe, expect, it } from 'vitest';
import { call, createChannel, ok, person, send } from '../conversations/fixtures.js';
import { connect, type TestSocket } from './client.js';
import { useListeningApp } from './fixtures.js';

const listening = useListeningApp();

/** The socket still works: a ping gets its pong and its ack. */
async function expectStillOpen(socket: TestSocket): Promise<void> {
  const answer = await socket.request({ type: 'ping' });
  expect(answer.type).toBe('ack');
  expect(socket.closeCode).toBeUndefined();
}

async function messagesIn(channelId: string, who: Awaited<ReturnType<typeof person>>) {
  const body = await ok<{ messages: { id: string; content: string }[] }>(
    call(listening().app, who, 'GET', `/channels/${channelId}/messages`),
  );
  return body.messages;
}

describe('bad frames', () => {
  it('answers each kind of bad frame with its code and keeps the socket open', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const socket = await connect(port, alice);
    const cases: [string | Buffer, string, boolean?][] = [
      ['{not json', 'INVALID_JSON'],
      ['[1,2]', 'INVALID_FRAME'],
      ['"text"', 'INVALID_FRAME'],
      [JSON.stringify({ id: 'no-type' }), 'INVALID_FRAME'],
      [JSON.stringify({ type: 'launch_rockets', id: 'u1' }), 'UNKNOWN_TYPE'],
      [JSON.stringify({ type: 'chat_message', id: 'v1', content: 'hi' }), 'VALIDATION_FAILED'],
      [JSON.stringify({ type: 'mark_read', id: 'v2', channel_id: 'general', seq: -1 }), 'VALIDATION_FAILED'],
      [JSON.stringify({ type: 'set_status', id: 'v3', status: 'invisible' }), 'VALIDATION_FAILED'],
      [Buffer.from([1, 2, 3]), 'INVALID_FRAME', true],
    ];
    for (const [data, code, binary] of cases) {
      const before = socket.ofType('error').length;
      socket.sendRaw(data, binary);
      await socket.waitFor(
        () => socket.ofType('error').length > before,
        5000,
        `the error for ${String(data)}`,
      );
      expect(socket.ofType('error').at(-1)).toMatchObject({ type: 'error', code });
    }
    // Errors echo a usable id as ref, with the failing field named.
    expect(socket.ofType('error').find((e) => e.ref === 'u1')?.code).toBe('UNKNOWN_TYPE');
    const invalid = socket.ofType('error').find((e) => e.ref === 'v1')!;
    expect(invalid.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'channel_id' })]),
    );
    await expectStillOpen(socket);
    await socket.close();
  });

  it('refuses service-level mistakes with the REST codes and stores nothing', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const bob = await person(app);
    const channel = await createChannel(app, bob, { name: `private-${Date.now()}`, kind: 'group' });
    const socket = await connect(port, alice);
    const notMember = await socket.request({
      type: 'chat_message',
      channel_id: channel.id,
      content: 'let me in',
    });
    // A private group is not revealed to outsiders, exactly as over REST.
    expect(notMember).toMatchObject({ type: 'error', code: 'CHANNEL_NOT_FOUND' });
    const empty = await socket.request({ type: 'personal_message', recipient_id: bob.id, content: '   ' });
    expect(empty).toMatchObject({ type: 'error', code: 'VALIDATION_FAILED' });
    const control = await socket.request({
      type: 'personal_message',
      recipient_id: bob.id,
      content: 'a\u0000b',
    });
    expect(control).toMatchObject({ type: 'error', code: 'VALIDATION_FAILED' });
    const toSelf = await socket.request({ type: 'personal_message', recipient_id: alice.id, content: 'me' });
    expect(toSelf).toMatchObject({ type: 'error', code: 'INVALID_RECIPIENT' });
    const unknownEdit = await socket.request({
      type: 'edit_message',
      message_id: `${channel.id}-99`,
      content: 'x',
    });
    expect(unknownEdit).toMatchObject({ type: 'error', code: 'MESSAGE_NOT_FOUND' });
    expect(await messagesIn(channel.id, bob)).toEqual([]);
    await expectStillOpen(socket);
    await socket.close();
  });
});

describe('answers', () => {
  it('acks a send with the stored message, and a resend with the same client_id with the same message', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const bob = await person(app);
    const socket = await connect(port, alice);
    const frame = {
      type: 'personal_message',
      recipient_id: bob.email,
      content: '  hello bob ',
      client_id: 'c-1',
    };
    const first = await socket.request(frame);
    expect(first).toMatchObject({ type: 'ack', created: true });
    const message = first.message as Record<string, unknown>;
    expect(message).toMatchObject({
      content: 'hello bob',
      sender_id: alice.id,
      sender_name: alice.name,
      recipient_id: bob.id,
      channel_kind: 'direct',
      seq: 1,
      client_id: 'c-1',
    });
    const again = await socket.request(frame);
    expect(again).toMatchObject({ type: 'ack', created: false, message: { id: message.id, seq: 1 } });
    // The REST retry of the same client_id finds the same message too.
    const rest = await call(app, alice, 'POST', '/messages', { ...frame, type: undefined });
    expect(rest.statusCode).toBe(200);
    expect(rest.json()).toMatchObject({ id: message.id });
    expect(await messagesIn(String(message.channel_id), alice)).toHaveLength(1);
    await socket.close();
  });

  it('gives exactly one answer per frame with an id, after its other frames, and none without an id', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const socket = await connect(port, alice);
    socket.send({ type: 'ping', id: 'p1' });
    socket.send({ type: 'get_all_statuses', id: 's1' });
    socket.send({ type: 'ping' });
    await socket.waitFor((frame) => frame.type === 'ack' && frame.ref === 's1');
    await socket.waitFor(() => socket.ofType('pong').length === 2);
    const answers = socket.frames.filter((frame) => frame.type === 'ack' || frame.type === 'error');
    expect(answers.map((frame) => frame.ref)).toEqual(['p1', 's1']);
    const types = socket.frames.map((frame) => frame.type);
    expect(types.indexOf('pong')).toBeLessThan(types.indexOf('ack'));
    expect(types.indexOf('all_statuses')).toBeLessThan(types.lastIndexOf('ack'));
    expect(socket.ofType('pong')[0]).toMatchObject({ ref: 'p1' });
    await socket.close();
  });

  it('edits, reacts, marks read and deletes through the same rules as REST', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const bob = await person(app);
    const channel = await createChannel(app, alice, {
      name: `team-${Date.now()}`,
      kind: 'group',
      members: [bob.id],
    });
    const socket = await connect(port, alice);
    const sent = (await socket.request({ type: 'chat_message', channel_id: channel.id, content: 'draft' }))
      .message as { id: string; seq: number };
    const edited = await socket.request({ type: 'edit_message', message_id: sent.id, content: 'final' });
    expect(edited).toMatchObject({ type: 'ack', message: { id: sent.id, content: 'final' } });
    const bobSocket = await connect(port, bob);
    const notHis = await bobSocket.request({
      type: 'edit_message',
      message_id: sent.id,
      content: 'mine now',
    });
    expect(notHis).toMatchObject({ type: 'error', code: 'NOT_MESSAGE_SENDER' });
    const reacted = await bobSocket.request({
      type: 'reaction_update',
      message_id: sent.id,
      reaction_type: '👍',
      action: 'add',
    });
    expect(reacted).toMatchObject({
      type: 'ack',
      reactions: [{ reaction_type: '👍', count: 1, user_ids: [bob.id] }],
    });
    const replaced = await bobSocket.request({
      type: 'reaction_update',
      message_id: sent.id,
      reaction_type: '🎉',
      action: 'replace',
      old_reaction_type: '👍',
    });
    expect(replaced).toMatchObject({ reactions: [{ reaction_type: '🎉', count: 1 }] });
    const read = await bobSocket.request({ type: 'mark_read', channel_id: channel.id, seq: sent.seq });
    expect(read).toMatchObject({
      type: 'ack',
      channel_id: channel.id,
      last_read_seq: sent.seq,
      unread_count: 0,
    });
    const deleted = await socket.request({ type: 'delete_message', message_id: sent.id });
    expect(deleted).toMatchObject({ type: 'ack', message: { id: sent.id, deleted: true, content: '' } });
    const [stored] = await messagesIn(channel.id, alice);
    expect(stored).toMatchObject({ id: sent.id, deleted: true });
    await Promise.all([socket.close(), bobSocket.close()]);
  });

  it('answers a file message with FILE_NOT_FOUND for a file that does not exist', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const bob = await person(app);
    const socket = await connect(port, alice);
    const answer = await socket.request({
      type: 'file_upload',
      file_id: 'a'.repeat(24),
      recipient_id: bob.id,
    });
    expect(answer).toMatchObject({ type: 'error', code: 'FILE_NOT_FOUND' });
    const both = await socket.request({ type: 'file_upload', file_id: 'a'.repeat(24) });
    expect(both).toMatchObject({ type: 'error', code: 'VALIDATION_FAILED' });
    await socket.close();
  });
});

describe('the session behind a socket', () => {
  it('is checked for every frame: roles taken away over REST are gone on the open socket too', async () => {
    const { port, app } = listening();
    const moderator = await person(app, { roles: ['moderator'] });
    const author = await person(app);
    const admin = await person(app, { roles: ['admin'] });
    const channel = await createChannel(app, author, {
      name: `mod-${Date.now()}`,
      kind: 'group',
      members: [moderator.id],
    });
    const [first, second] = [
      await send(app, author, { channel_id: channel.id, content: 'one' }),
      await send(app, author, { channel_id: channel.id, content: 'two' }),
    ];
    const socket = await connect(port, moderator);
    expect(await socket.request({ type: 'delete_message', message_id: first.id })).toMatchObject({
      type: 'ack',
    });
    await ok(call(app, admin, 'PATCH', `/admin/users/${moderator.id}`, { roles: ['member'] }));
    const refused = await socket.request({ type: 'delete_message', message_id: second.id });
    expect(refused).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    const [, kept] = await messagesIn(channel.id, author);
    expect(kept).toMatchObject({ id: second.id, content: 'two' });
    await socket.close();
  });
});

describe('the detection hook', () => {
  it('refuses frames it rejects, and a hook that throws costs an error answer, not the process', async () => {
    const { port, app } = listening();
    const alice = await person(app);
    const socket = await connect(port, alice);
    try {
      app.realtime.hub.useFrameInspector((frame) => frame.type !== 'typing');
      const refused = await socket.request({ type: 'typing', channel_id: 'general' });
      expect(refused).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
      app.realtime.hub.useFrameInspector(() => {
        throw new Error('detector bug');
      });
      const failed = await socket.request({ type: 'ping' });
      expect(failed).toMatchObject({ type: 'error', code: 'INTERNAL_ERROR' });
    } finally {
      app.realtime.hub.useFrameInspector(() => true);
    }
    await expectStillOpen(socket);
    await socket.close();
  });
});

describe('the per-user send limit', () => {
  const limited = useListeningApp({ rate_limit: { messages_per_minute: 3 } });

  it('counts REST and WebSocket sends together and stores nothing over it', async () => {
    const { port, app } = limited();
    const alice = await person(app);
    const bob = await person(app);
    for (const content of ['one', 'two']) {
      const response = await call(app, alice, 'POST', '/messages', { recipient_id: bob.id, content });
      expect(response.statusCode).toBe(201);
    }
    const socket = await connect(port, alice);
    const third = await socket.request({ type: 'personal_message', recipient_id: bob.id, content: 'three' });
    expect(third.type).toBe('ack');
    const fourth = await socket.request({ type: 'personal_message', recipient_id: bob.id, content: 'four' });
    expect(fourth).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
    expect(fourth.retry_after_ms).toBeGreaterThan(0);
    const rest = await call(app, alice, 'POST', '/messages', { recipient_id: bob.id, content: 'five' });
    expect(rest.statusCode).toBe(429);
    const channelId = (third.message as { channel_id: string }).channel_id;
    const stored = await ok<{ messages: { content: string }[] }>(
      call(app, bob, 'GET', `/channels/${channelId}/messages`),
    );
    expect(stored.messages.map((m) => m.content)).toEqual(['one', 'two', 'three']);
    await socket.close();
  });
});
