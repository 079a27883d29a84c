// Promise: a crash loses nothing that was acknowledged and stores nothing twice. People of one group
// channel send with client_ids over REST and over their sockets (several sends in flight each); the server
// process is killed with SIGKILL in the middle of it and started again on the same port and environment.
// Clients resend everything that was not acknowledged with the same client_ids, and sockets resume from
// the last seq they saw. In the end each message is stored exactly once, the channel's seqs are strictly
// increasing (gap-free as far as the contract promises), and every resumed client holds exactly the
// server's messages in the server's order.
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueDatabaseName } from '../helper.js';
import { recordSection } from './report.js';
import { PROFILE } from './profile.js';
import {
  api,
  channelChanges,
  channelHistory,
  connectTo,
  countBy,
  kill,
  loginAdmin,
  newGroup,
  newPerson,
  pause,
  restart,
  sharedDatabaseUrl,
  startSwitchboard,
  stopEverything,
  type Person,
  type ServerProcess,
  type StoredMessage as Stored,
  type TestSocket,
} from './harness.js';

/** Traffic before the kill. */
const SEND_BEFORE_KILL_MS = PROFILE.name === 'full' ? 15_000 : 4_000;
/** People sending over each transport, and how many sends each keeps in flight. */
const REST_PEOPLE = 3;
const SOCKET_PEOPLE = 3;
const IN_FLIGHT_PER_PERSON = 3;
/** New messages each sender adds after the restart (the numbering must carry on). */
const SENDS_AFTER_RESTART = 3;
/** Pause between one loop's sends. */
const PACE_MS = 15;
/** A send or frame with no answer after this long has failed. */
const ANSWER_MS = 20_000;
/** How long a resumed client may take to catch up with the server's last messages. */
const CATCH_UP_MS = 20_000;

type Via = 'rest' | 'socket';

interface Sender {
  label: string;
  via: Via;
  person: Person;
  /** Its current socket (socket senders), and every socket it had (frames before and after the kill). */
  socket?: TestSocket;
}

interface Send {
  sender: Sender;
  clientId: string;
  content: string;
  /** Every message an acknowledgement of this client_id carried (first send and resends). */
  acks: Stored[];
  ackedBeforeKill: boolean;
  /** How the first try ended when it was not acknowledged. */
  failure?: string;
  /** Resends after the restart: how they were answered. */
  resends: string[];
  /** Stored as a new message after the restart (a resend answered 201, or a new message). */
  createdAfterRestart?: boolean;
}

let server: ServerProcess;
const databaseName = uniqueDatabaseName();
let channelId: string;
let owner: Person;
let reader: Person;
let readerSocket: TestSocket;
const senders: Sender[] = [];
const sends = new Map<string, Send>();
const serverLog: string[] = [];

function captureOutput(process: ServerProcess): void {
  process.child.stdout!.on('data', (chunk: string) => serverLog.push(chunk));
  process.child.stderr!.on('data', (chunk: string) => serverLog.push(chunk));
}

beforeAll(async () => {
  // Warnings and errors on the console: evidence when a check fails. The restart reuses all of it.
  server = await startSwitchboard('crash', { databaseName, env: { LOG_CONSOLE: 'json', LOG_LEVEL: 'warn' } });
  captureOutput(server);
  const admin = await loginAdmin(server);
  const people: Person[] = [];
  for (let index = 0; index < REST_PEOPLE + SOCKET_PEOPLE + 1; index += 1) {
    people.push(await newPerson(server, admin));
  }
  owner = people[0]!;
  reader = people.at(-1)!;
  channelId = await newGroup(server, owner, people.slice(1));
  for (const [index, person] of people.slice(0, -1).entries()) {
    const via: Via = index < REST_PEOPLE ? 'rest' : 'socket';
    senders.push({
      label: `${via}${index}`,
      via,
      person,
      socket: via === 'socket' ? await connectTo(server, person) : undefined,
    });
  }
  readerSocket = await connectTo(server, reader);
}, 180_000);

afterAll(async () => {
  await stopEverything();
  const client = new MongoClient(sharedDatabaseUrl());
  try {
    await client.db(databaseName).dropDatabase();
  } finally {
    await client.close();
  }
}, 60_000);

// ---- sending ----

type Answer = { acked: Stored; created: boolean } | { failed: string };

async function sendOnce(sender: Sender, clientId: string, content: string): Promise<Answer> {
  if (sender.via === 'rest') {
    try {
      const answer = await api<Stored & { code?: string }>(
        server,
        sender.person,
        'POST',
        '/messages',
        { channel_id: channelId, content, client_id: clientId },
        ANSWER_MS,
      );
      if (answer.status === 200 || answer.status === 201) {
        return { acked: answer.body, created: answer.status === 201 };
      }
      return { failed: `${answer.status} ${JSON.stringify(answer.body)}` };
    } catch (error) {
      return { failed: `no answer: ${String(error)}` };
    }
  }
  const socket = sender.socket!;
  if (socket.closeCode !== undefined) return { failed: `socket closed ${socket.closeCode}` };
  try {
    const answer = await socket.request(
      { type: 'chat_message', channel_id: channelId, content, client_id: clientId },
      ANSWER_MS,
    );
    if (answer.type === 'ack') return { acked: answer.message as Stored, created: answer.created as boolean };
    return { failed: `error frame ${JSON.stringify(answer)}` };
  } catch (error) {
    return { failed: `no answer: ${String(error)}` };
  }
}

/** One of a sender's loops: new messages one after another while `running` says so. */
async function loop(sender: Sender, lane: number, running: () => boolean) {
  let count = 0;
  while (running()) {
    count += 1;
    const clientId = `${sender.label}l${lane}-${count}`;
    const send: Send = {
      sender,
      clientId,
      content: `crash message ${clientId}`,
      acks: [],
      ackedBeforeKill: false,
      resends: [],
    };
    sends.set(clientId, send);
    const answer = await sendOnce(sender, clientId, send.content);
    if ('acked' in answer) {
      send.acks.push(answer.acked);
      // Acknowledged by the first process (possibly while SIGKILL was on its way).
      send.ackedBeforeKill = true;
    } else {
      send.failure = answer.failed;
    }
    await pause(PACE_MS);
  }
}

// ---- reading ----

/** Every message of the channel a socket has seen: acks, live events and syncs. */
function seenOn(socket: TestSocket): Stored[] {
  const seen: Stored[] = [];
  for (const frame of socket.frames) {
    if (frame.type === 'ack' && frame.message) seen.push(frame.message as Stored);
    else if (frame.type === 'chat_message' && frame.channel_id === channelId)
      seen.push(frame as unknown as Stored);
    else if (frame.type === 'sync' && frame.channel_id === channelId)
      seen.push(...(frame.messages as Stored[]));
  }
  return seen.filter((message) => message.channel_id === channelId);
}

/** A client's view: the latest version of each message it saw, in seq order. */
function view(messages: readonly Stored[]): Stored[] {
  const byId = new Map<string, Stored>();
  for (const message of messages) {
    const known = byId.get(message.id);
    if (!known || message.change_seq >= known.change_seq) byId.set(message.id, message);
  }
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

const lastSeen = (messages: readonly Stored[]) => Math.max(0, ...messages.map((m) => m.change_seq));

/**
 * A socket client coming back: a new socket, `resume` with the last change it saw, and when the sync is
 * incomplete, the rest from /changes. Returns what it read through /changes.
 */
async function resume(who: Person, since: number): Promise<{ socket: TestSocket; paged: Stored[] }> {
  const socket = await connectTo(server, who);
  const answer = await socket.request({ type: 'resume', channels: { [channelId]: since } }, ANSWER_MS);
  expect(answer.type, JSON.stringify(answer)).toBe('ack');
  const sync = await socket.waitForType('sync', (frame) => frame.channel_id === channelId, ANSWER_MS);
  const paged = sync.complete
    ? []
    : (await channelChanges(server, who, channelId, sync.last_seq as number)).messages;
  return { socket, paged };
}

const ids = (messages: readonly Stored[]) => messages.map((message) => message.id);

describe('crash and restart under traffic', () => {
  it('loses no acknowledged message, stores none twice, and resumed clients end with the server’s exact state', async () => {
    // ---- traffic, then SIGKILL ----
    let sending = true;
    const loops = senders.flatMap((sender) =>
      Array.from({ length: IN_FLIGHT_PER_PERSON }, (_, lane) => loop(sender, lane, () => sending)),
    );
    await pause(SEND_BEFORE_KILL_MS);
    const first = server;
    const killing = kill(first.child, 'SIGKILL');
    sending = false;
    await killing;
    await Promise.all(loops);
    expect(first.child.signalCode).toBe('SIGKILL');

    const sent = [...sends.values()];
    const ackedBeforeKill = sent.filter((send) => send.ackedBeforeKill);
    const unacked = sent.filter((send) => send.acks.length === 0);
    const inFlightFailures = countBy(unacked, (send) => (send.failure ?? '?').split(':')[0]!.slice(0, 40));
    // What each socket client had seen when the server died: its resume position.
    const oldSockets = new Map<Person, TestSocket>([
      ...senders.filter((s) => s.socket).map((s): [Person, TestSocket] => [s.person, s.socket!]),
      [reader, readerSocket],
    ]);
    const seenBefore = new Map([...oldSockets].map(([who, socket]) => [who, seenOn(socket)]));

    // ---- restart on the same port and environment ----
    const restartStart = Date.now();
    server = await restart(first);
    const restartMs = Date.now() - restartStart;
    captureOutput(server);

    // ---- clients come back: sockets resume, then everything unacknowledged is sent again ----
    const resumed = new Map<Person, { socket: TestSocket; paged: Stored[] }>();
    for (const [who, seen] of seenBefore) {
      const back = await resume(who, lastSeen(seen));
      resumed.set(who, back);
      const sender = senders.find((s) => s.person === who);
      if (sender) sender.socket = back.socket;
    }
    let resendTries = 0;
    for (const send of unacked) {
      for (let attempt = 0; attempt < 5 && send.acks.length === 0; attempt += 1) {
        resendTries += 1;
        const answer = await sendOnce(send.sender, send.clientId, send.content);
        if ('acked' in answer) {
          send.acks.push(answer.acked);
          send.createdAfterRestart = answer.created;
          send.resends.push(answer.created ? 'created' : 'found stored');
        } else {
          send.resends.push(answer.failed);
          await pause(500);
        }
      }
    }
    // ---- new messages after the restart: the numbering carries on ----
    const after: Send[] = [];
    for (const sender of senders) {
      for (let index = 1; index <= SENDS_AFTER_RESTART; index += 1) {
        const clientId = `${sender.label}-after-${index}`;
        const send: Send = {
          sender,
          clientId,
          content: `after restart ${clientId}`,
          acks: [],
          ackedBeforeKill: false,
          resends: [],
        };
        sends.set(clientId, send);
        after.push(send);
        const answer = await sendOnce(sender, clientId, send.content);
        if ('acked' in answer) {
          send.acks.push(answer.acked);
          send.createdAfterRestart = answer.created;
        } else send.failure = answer.failed;
      }
    }

    // ---- the server's state ----
    const stored = await channelHistory(server, owner, channelId);
    const changed = (await channelChanges(server, owner, channelId)).messages;
    const storedCounts = countBy(stored, (message) => message.client_id ?? `(none) ${message.id}`);
    const duplicates = Object.values(storedCounts).reduce((sum, count) => sum + Math.max(0, count - 1), 0);
    const storedIds = new Set(stored.map((message) => message.client_id));
    const allSends = [...sends.values()];
    const acknowledged = allSends.filter((send) => send.acks.length > 0);
    const missing = acknowledged.filter((send) => !storedIds.has(send.clientId));
    const neverAcknowledged = stored.filter(
      (message) => !acknowledged.some((send) => send.clientId === message.client_id),
    );
    const storedByClientId = new Map(stored.map((message) => [message.client_id, message]));
    const ackMismatches = acknowledged.filter((send) =>
      send.acks.some((ack) => ack.id !== storedByClientId.get(send.clientId)?.id),
    );
    const seqs = stored.map((message) => message.seq);
    const increasing = seqs.every((seq, index) => index === 0 || seq > seqs[index - 1]!);
    const seqGaps = seqs.reduce(
      (gaps, seq, index) => gaps + (index === 0 ? seq - 1 : seq - seqs[index - 1]! - 1),
      0,
    );
    // Messages stored after the restart carry on from the last one stored before it, without a gap.
    const createdAfter = new Set(
      allSends.filter((send) => send.createdAfterRestart).map((send) => send.acks[0]!.id),
    );
    const afterSeqs = stored.filter((m) => createdAfter.has(m.id)).map((m) => m.seq);
    const lastBefore = Math.max(0, ...stored.filter((m) => !createdAfter.has(m.id)).map((m) => m.seq));
    const afterGapFree =
      afterSeqs.length === createdAfter.size &&
      afterSeqs.every((seq, index) => seq === lastBefore + 1 + index);
    const changedIds = ids(view(changed));

    // ---- the resumed clients' state ----
    const deadline = Date.now() + CATCH_UP_MS;
    const views = new Map<Person, Stored[]>();
    for (const [who, back] of resumed) {
      const mine = () => view([...seenBefore.get(who)!, ...back.paged, ...seenOn(back.socket)]);
      // Live events of the last sends may still be on their way.
      while (Date.now() < deadline && mine().length < stored.length) await pause(100);
      views.set(who, mine());
    }
    // A client without a socket: what it saw before the crash, then /changes from there.
    const readerPaged = view([
      ...seenBefore.get(reader)!,
      ...(await channelChanges(server, reader, channelId, lastSeen(seenBefore.get(reader)!))).messages,
    ]);
    const storedOrder = JSON.stringify(ids(stored));
    const diverged = [...views].filter(([, mine]) => JSON.stringify(ids(mine)) !== storedOrder);

    const resentCreated = unacked.filter((send) => send.resends.includes('created')).length;
    const resentFoundStored = unacked.filter((send) => send.resends.includes('found stored')).length;
    const figures = {
      senders_rest: REST_PEOPLE,
      senders_socket: SOCKET_PEOPLE,
      in_flight_per_sender: IN_FLIGHT_PER_PERSON,
      sent: sent.length,
      acknowledged_before_kill: ackedBeforeKill.length,
      unacknowledged_at_kill: unacked.length,
      resent: unacked.length,
      resend_tries: resendTries,
      resent_created: resentCreated,
      resent_found_stored: resentFoundStored,
      sent_after_restart: after.length,
      stored_after_restart: createdAfter.size,
      stored: stored.length,
      duplicates,
      missing_acknowledged: missing.length,
      stored_never_acknowledged: neverAcknowledged.length,
      seq_gaps: seqGaps,
      last_seq: seqs.at(-1) ?? 0,
      restart_ms: restartMs,
      resumed_clients: resumed.size,
      resume_synced_messages: [...resumed.values()].reduce(
        (sum, back) =>
          sum +
          back.socket.frames
            .filter((frame) => frame.type === 'sync')
            .reduce((n, frame) => n + (frame.messages as Stored[]).length, 0),
        0,
      ),
      resume_paged_messages: [...resumed.values()].reduce((sum, back) => sum + back.paged.length, 0),
      resumed_clients_diverged: diverged.length,
      unacknowledged_by: JSON.stringify(inFlightFailures),
    };

    const output = () => serverLog.join('').slice(-4000);
    const checks: string[] = [];
    const notHeld: string[] = [];
    const check = (holds: boolean, sentence: string, detail: () => string) => {
      expect.soft(holds, `${sentence}\n${detail()}`).toBe(true);
      (holds ? checks : notHeld).push(sentence);
    };
    check(
      ackedBeforeKill.length > 0 && unacked.length > 0,
      'The kill came in the middle of traffic: messages had been acknowledged and others were in flight.',
      () => `acknowledged ${ackedBeforeKill.length}, in flight ${unacked.length}`,
    );
    check(
      unacked.every((send) => send.acks.length > 0),
      'Every message not acknowledged before the kill, resent with its client_id after the restart, was acknowledged.',
      () =>
        JSON.stringify(
          unacked.filter((s) => s.acks.length === 0).map((s) => [s.clientId, s.failure, s.resends]),
        ) + `\n${output()}`,
    );
    check(
      after.every((send) => send.acks.length > 0),
      'New messages after the restart were acknowledged.',
      () => JSON.stringify(after.filter((s) => s.acks.length === 0).map((s) => [s.clientId, s.failure])),
    );
    check(
      missing.length === 0,
      'Every acknowledged message is stored (nothing acknowledged was lost in the crash).',
      () => JSON.stringify(missing.slice(0, 10).map((s) => [s.clientId, s.ackedBeforeKill, s.acks[0]])),
    );
    check(
      duplicates === 0,
      'Each message is stored exactly once (counted by client_id).',
      () =>
        JSON.stringify(stored.filter((m) => (storedCounts[m.client_id ?? ''] ?? 0) > 1).slice(0, 10)) +
        `\n${output()}`,
    );
    check(neverAcknowledged.length === 0, 'No message is stored that was never acknowledged.', () =>
      JSON.stringify(neverAcknowledged.slice(0, 5)),
    );
    check(
      ackMismatches.length === 0,
      'Every acknowledgement of a client_id, before the kill or on a resend, named the one stored message.',
      () =>
        JSON.stringify(
          ackMismatches
            .slice(0, 5)
            .map((s) => [s.clientId, s.acks.map((a) => a.id), storedByClientId.get(s.clientId)?.id]),
        ),
    );
    check(
      increasing && new Set(seqs).size === seqs.length,
      'The channel’s seqs are strictly increasing, without duplicates.',
      () => JSON.stringify(seqs.slice(0, 50)),
    );
    check(
      seqGaps === 0,
      'The channel’s seqs are gap-free (1..n), the crash included.',
      () => `gaps ${seqGaps}; seqs ${JSON.stringify(seqs)}`,
    );
    check(
      afterGapFree,
      'Messages sent after the restart continue the numbering without a gap.',
      () => `after-restart seqs ${JSON.stringify(afterSeqs)}, last before ${lastBefore}`,
    );
    check(
      JSON.stringify(changedIds) === storedOrder,
      'The changes feed from 0 lists exactly the history, in the same order.',
      () => `history ${stored.length}, changes ${changedIds.length}`,
    );
    check(
      diverged.length === 0,
      'Every socket client that resumed (resume with its last seen seq, then /changes when incomplete) holds exactly the server’s messages, in the server’s order.',
      () =>
        diverged
          .map(([who, mine]) => {
            const have = new Set(ids(mine));
            const want = new Set(ids(stored));
            return `${who.email}: ${mine.length} vs ${stored.length}; missing ${JSON.stringify(
              [...want].filter((id) => !have.has(id)).slice(0, 5),
            )}; extra ${JSON.stringify([...have].filter((id) => !want.has(id)).slice(0, 5))}`;
          })
          .join('\n'),
    );
    check(
      JSON.stringify(ids(readerPaged)) === storedOrder,
      'A client paging /changes from its last seen seq after the restart holds exactly the server’s messages, in order.',
      () => `${readerPaged.length} vs ${stored.length}`,
    );
    check(
      server.child.exitCode === null && server.child.signalCode === null,
      'The restarted process is running.',
      () => output(),
    );

    recordSection('crash', {
      summary:
        `${REST_PEOPLE} people over REST and ${SOCKET_PEOPLE} over sockets (${IN_FLIGHT_PER_PERSON} sends in flight each) ` +
        `sent to one group channel; the server was killed with SIGKILL ${Math.round(SEND_BEFORE_KILL_MS / 1000)} s in ` +
        `and restarted on the same port and environment; clients resent what was not acknowledged with the same ` +
        `client_ids and resumed from their last seen seq.`,
      // A check that did not hold is named here too, so the report never reads better than the run.
      figures: { ...figures, checks_not_held: notHeld.length ? notHeld.join(' | ') : 'none' },
      checks,
    });
  });
});
