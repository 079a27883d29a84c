// Promise: a database outage in the middle of traffic costs nothing but the time it lasts. Several people
// of one group channel send continuously, some over REST (POST /messages with client_ids), some over their
// sockets (chat_message frames with client_ids), to a real server process on a private FerretDB; the
// database is stopped for a few seconds and started again. Every send during the outage fails fast
// (503 DATABASE_UNAVAILABLE, or an error frame with a code), never a 500 and never a hang; health says
// down; the process stays up and recovers by itself; a client that was refused retries with the same
// client_id; in the end every acknowledged message is stored exactly once and nothing else is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSection } from './report.js';
import { PROFILE } from './profile.js';
import {
  api,
  channelChanges,
  channelHistory,
  connectTo,
  countBy,
  loginAdmin,
  newGroup,
  newPerson,
  pause,
  percentile,
  privateDatabase,
  startSwitchboard,
  stopEverything,
  type Person,
  type PrivateDatabase,
  type ServerProcess,
  type StoredMessage as Stored,
  type TestSocket,
} from './harness.js';

/** database.timeout_ms of the server under test: what bounds every database call. */
const DB_TIMEOUT_MS = 1500;
/** A refused send must be answered within this (the timeout plus room for a busy 2-CPU machine). */
const FAIL_FAST_BOUND_MS = DB_TIMEOUT_MS + 3000;
/** How long the database stays down. */
const OUTAGE_MS = PROFILE.name === 'full' ? 10_000 : 5_000;
/** Traffic before the outage and after recovery. */
const WARMUP_MS = PROFILE.name === 'full' ? 10_000 : 3_000;
const AFTER_MS = PROFILE.name === 'full' ? 10_000 : 3_000;
/** People sending over each transport, and the concurrent streams of each. */
const REST_PEOPLE = 3;
const SOCKET_PEOPLE = 3;
const STREAMS_PER_PERSON = 2;
/** Pause between one stream's sends. */
const PACE_MS = 40;
/** A send with no answer after this long is a hang (far beyond FAIL_FAST_BOUND_MS). */
const HANG_MS = 20_000;
/** Recovery must come within this after the database is back. */
const RECOVERY_BOUND_MS = 45_000;

type Via = 'rest' | 'socket';

interface Client {
  label: string;
  via: Via;
  person: Person;
  /** The stream's own socket (socket clients). */
  socket?: TestSocket;
}

interface Attempt {
  client: Client;
  clientId: string;
  retry: boolean;
  startedAt: number;
  endedAt: number;
  latencyMs: number;
  /** acked: 201/200 or an ack; refused: an error status or frame; hung: no answer; lost: no connection. */
  outcome: 'acked' | 'refused' | 'hung' | 'lost';
  /** HTTP status (REST) or 'ack' / 'error' (socket). */
  status: string;
  code?: string;
  message?: Stored;
  created?: boolean;
  detail?: string;
}

let database: PrivateDatabase;
let server: ServerProcess;
let exited: string | undefined;
let channelId: string;
let owner: Person;
const clients: Client[] = [];
const attempts: Attempt[] = [];
const serverLog: string[] = [];

/** The server's log lines about one request (by the request_id of its answer), or its errors. */
function logLines(attempt: Attempt): string[] {
  const requestId = /"request_id":"([^"]+)"/.exec(attempt.detail ?? '')?.[1];
  const lines = serverLog.join('').split('\n');
  if (requestId) return lines.filter((line) => line.includes(requestId));
  return lines.filter((line) => line.includes('"level":"error"') && !line.includes('request completed'));
}

beforeAll(async () => {
  database = await privateDatabase();
  server = await startSwitchboard('outage', {
    databaseUrl: database.url,
    // Warnings and errors on the console, so that server.output() is evidence when a check fails.
    env: { DB_TIMEOUT_MS: String(DB_TIMEOUT_MS), LOG_CONSOLE: 'json', LOG_LEVEL: 'warn' },
  });
  // The whole console output (server.output() keeps only its tail): evidence for a failed check.
  server.child.stdout!.on('data', (chunk: string) => serverLog.push(chunk));
  server.child.stderr!.on('data', (chunk: string) => serverLog.push(chunk));
  server.child.once('exit', (code, signal) => {
    exited = `exit code ${code}, signal ${signal}`;
  });
  const admin = await loginAdmin(server);
  const people: Person[] = [];
  for (let index = 0; index < REST_PEOPLE + SOCKET_PEOPLE; index += 1) {
    people.push(await newPerson(server, admin));
  }
  owner = people[0]!;
  channelId = await newGroup(server, owner, people.slice(1));
  for (const [index, person] of people.entries()) {
    const via: Via = index < REST_PEOPLE ? 'rest' : 'socket';
    for (let stream = 0; stream < STREAMS_PER_PERSON; stream += 1) {
      // One socket per stream: frames of one socket are answered in order, so a second stream on it
      // would wait behind the first and measure the client's pipelining rather than the server.
      const socket = via === 'socket' ? await connectTo(server, person) : undefined;
      clients.push({ label: `${via}${index}s${stream}`, via, person, socket });
    }
  }
}, 180_000);

afterAll(async () => {
  await stopEverything();
}, 60_000);

// ---- sending ----

async function send(client: Client, clientId: string, retry: boolean): Promise<Attempt> {
  const content = `outage message ${clientId}`;
  const startedAt = Date.now();
  const done = (
    fields: Omit<Attempt, 'client' | 'clientId' | 'retry' | 'startedAt' | 'endedAt' | 'latencyMs'>,
  ) => {
    const endedAt = Date.now();
    const attempt: Attempt = {
      client,
      clientId,
      retry,
      startedAt,
      endedAt,
      latencyMs: endedAt - startedAt,
      ...fields,
    };
    attempts.push(attempt);
    return attempt;
  };
  if (client.via === 'rest') {
    try {
      const answer = await api<Stored & { code?: string }>(
        server,
        client.person,
        'POST',
        '/messages',
        { channel_id: channelId, content, client_id: clientId },
        HANG_MS,
      );
      if (answer.status === 200 || answer.status === 201) {
        return done({
          outcome: 'acked',
          status: String(answer.status),
          message: answer.body,
          created: answer.status === 201,
        });
      }
      return done({
        outcome: 'refused',
        status: String(answer.status),
        code: answer.body?.code,
        detail: JSON.stringify(answer.body),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      return done({
        outcome: timedOut ? 'hung' : 'lost',
        status: timedOut ? 'timeout' : 'network',
        detail: String(error),
      });
    }
  }
  const socket = client.socket!;
  if (socket.closeCode !== undefined) {
    return done({ outcome: 'lost', status: 'closed', detail: `socket closed ${socket.closeCode}` });
  }
  try {
    const answer = await socket.request(
      { type: 'chat_message', channel_id: channelId, content, client_id: clientId },
      HANG_MS,
    );
    if (answer.type === 'ack') {
      return done({
        outcome: 'acked',
        status: 'ack',
        message: answer.message as Stored,
        created: answer.created as boolean,
      });
    }
    return done({
      outcome: 'refused',
      status: 'error',
      code: answer.code as string | undefined,
      detail: JSON.stringify(answer),
    });
  } catch (error) {
    const text = String(error);
    const timedOut = text.includes('timed out');
    return done({
      outcome: timedOut ? 'hung' : 'lost',
      status: timedOut ? 'timeout' : 'closed',
      detail: text,
    });
  }
}

/** A socket client whose socket closed opens a new one. */
async function reconnectIfClosed(client: Client): Promise<void> {
  if (client.via !== 'socket' || client.socket!.closeCode === undefined) return;
  try {
    client.socket = await connectTo(server, client.person, 5_000);
  } catch {
    await pause(250);
  }
}

/** Sends new messages one after another until told to stop. */
async function stream(client: Client, running: () => boolean): Promise<void> {
  let count = 0;
  while (running()) {
    await reconnectIfClosed(client);
    count += 1;
    await send(client, `${client.label}-${count}`, false);
    await pause(PACE_MS);
  }
}

// ---- reading ----

async function healthNow(): Promise<{ statusCode: number; status: string }> {
  try {
    const response = await fetch(`http://127.0.0.1:${server.port}/api/v2/health`, {
      signal: AbortSignal.timeout(HANG_MS),
    });
    const body = (await response.json()) as { status?: string };
    return { statusCode: response.status, status: body.status ?? '?' };
  } catch (error) {
    return { statusCode: 0, status: String(error) };
  }
}

const round = (value: number) => Math.round(value);

describe('database outage under traffic', () => {
  it('fails sends fast while the database is gone, recovers by itself, and stores every acknowledged message exactly once', async () => {
    let sending = true;
    const streams = clients.map((client) => stream(client, () => sending));

    await pause(WARMUP_MS);
    // ---- the outage ----
    // FerretDB stops gracefully (SIGTERM) and may serve for a while first: the outage starts when it is gone.
    const stopCalledAt = Date.now();
    await database.stop();
    const outageStart = Date.now();
    const healthDuring: { at: number; statusCode: number; status: string }[] = [];
    let watchingHealth = true;
    const healthWatch = (async () => {
      while (watchingHealth) {
        const answer = await healthNow();
        healthDuring.push({ at: Date.now(), ...answer });
        await pause(200);
      }
    })();
    await pause(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
    const startCalledAt = Date.now();
    await database.start();
    const dbBackAt = Date.now();
    const outageMs = dbBackAt - outageStart;

    // ---- recovery: the first send acknowledged after the database is back ----
    const recoveryDeadline = dbBackAt + RECOVERY_BOUND_MS;
    let firstAckAfter: Attempt | undefined;
    while (!firstAckAfter && Date.now() < recoveryDeadline) {
      await pause(50);
      firstAckAfter = attempts
        .filter((a) => a.outcome === 'acked' && a.endedAt > startCalledAt)
        .sort((a, b) => a.endedAt - b.endedAt)[0];
    }
    if (!firstAckAfter) {
      // The server did not recover by itself: record what was seen, then fail with the evidence.
      sending = false;
      watchingHealth = false;
      await Promise.all([...streams, healthWatch]);
      const since = attempts.filter((a) => a.startedAt > startCalledAt);
      const databaseErrors = serverLog
        .join('')
        .split('\n')
        .filter((line) => line.includes('"msg":"database unavailable"'))
        .map((line) => /"err":"([^"]*)"/.exec(line)?.[1] ?? '?');
      recordSection('outage', {
        summary: `The database (FerretDB) was stopped for ${outageMs} ms under traffic and started again; the server did NOT recover within ${RECOVERY_BOUND_MS} ms.`,
        figures: {
          db_timeout_ms: DB_TIMEOUT_MS,
          outage_ms: outageMs,
          recovered: false,
          sends_after_database_start: since.length,
          acknowledged_after_database_start: since.filter((a) => a.outcome === 'acked').length,
          last_database_error: databaseErrors.at(-1) ?? '',
        },
        checks: [],
      });
      expect.fail(
        `no send succeeded within ${RECOVERY_BOUND_MS} ms of the database's start (${since.length} tries: ` +
          `${JSON.stringify(countBy(since, (a) => `${a.client.via}_${a.status}_${a.code ?? ''}`))}); ` +
          `health since: ${JSON.stringify(
            countBy(
              healthDuring.filter((h) => h.at > dbBackAt),
              (h) => `${h.statusCode} ${h.status}`,
            ),
          )}; ` +
          `the server's database errors (${databaseErrors.length}): ${JSON.stringify(countBy(databaseErrors, (e) => e))}\n` +
          `latest tries: ${JSON.stringify(since.slice(-2).map(({ client, ...rest }) => ({ client: client.label, ...rest })))}`,
      );
    }
    const recoveredAt = firstAckAfter!.endedAt;
    const recoveryMs = recoveredAt - startCalledAt;
    // Health says ok again (the health poll keeps running until then).
    while (Date.now() < recoveryDeadline) {
      const last = healthDuring.at(-1);
      if (last && last.at > dbBackAt && last.statusCode === 200) break;
      await pause(100);
    }
    watchingHealth = false;
    await healthWatch;

    await pause(AFTER_MS);
    sending = false;
    await Promise.all(streams);

    // ---- retries: everything refused is sent again with its client_id ----
    const firstTries = [...attempts];
    const ackedIds = new Set(firstTries.filter((a) => a.outcome === 'acked').map((a) => a.clientId));
    const unacked = [...new Map(firstTries.map((a) => [a.clientId, a])).values()].filter(
      (a) => !ackedIds.has(a.clientId),
    );
    const retryResults: Attempt[] = [];
    for (const first of unacked) {
      let last: Attempt | undefined;
      for (let tries = 0; tries < 10; tries += 1) {
        await reconnectIfClosed(first.client);
        last = await send(first.client, first.clientId, true);
        if (last.outcome === 'acked') break;
        await pause(500);
      }
      retryResults.push(last!);
    }

    // ---- what is stored ----
    const stored = await channelHistory(server, owner, channelId);
    const changed = (await channelChanges(server, owner, channelId)).messages;
    const ours = stored.filter((message) => message.client_id !== null);

    // ---- figures ----
    const during = firstTries.filter((a) => a.startedAt >= outageStart && a.startedAt < dbBackAt);
    const failed = attempts.filter((a) => a.outcome !== 'acked');
    const failedLatencies = failed.map((a) => a.latencyMs);
    const duringLatencies = during.map((a) => a.latencyMs);
    const acks = attempts.filter((a) => a.outcome === 'acked');
    const ackedClientIds = new Set(acks.map((a) => a.clientId));
    const storedCounts = countBy(ours, (message) => message.client_id!);
    const duplicates = Object.values(storedCounts).reduce((sum, count) => sum + Math.max(0, count - 1), 0);
    const storedUnacked = ours.filter((message) => !ackedClientIds.has(message.client_id!));
    const missing = [...ackedClientIds].filter((id) => storedCounts[id] === undefined);
    // Every ack of a client_id names one message, the stored one.
    const ackIds = new Map<string, Set<string>>();
    for (const ack of acks) {
      const ids = ackIds.get(ack.clientId) ?? new Set<string>();
      ids.add(ack.message!.id);
      ackIds.set(ack.clientId, ids);
    }
    const storedById = new Map(ours.map((message) => [message.client_id!, message.id]));
    const ackMismatches = [...ackIds.entries()].filter(
      ([clientId, ids]) => ids.size !== 1 || storedById.get(clientId) !== [...ids][0],
    );
    const seqs = stored.map((message) => message.seq);
    const seqIncreasing = seqs.every((seq, index) => index === 0 || seq > seqs[index - 1]!);
    const seqGaps = seqs.length ? seqs.at(-1)! - seqs.length : 0;
    const changesIds = changed.map((message) => message.id).sort();
    const historyIds = stored.map((message) => message.id).sort();
    const statusCounts = countBy(attempts, (a) => `${a.client.via}_${a.status}${a.code ? `_${a.code}` : ''}`);
    const healthDown = healthDuring.filter(
      (h) => h.at < dbBackAt && h.statusCode === 503 && h.status === 'down',
    );
    const healthOkAgain = healthDuring.find((h) => h.at > dbBackAt && h.statusCode === 200);
    const failedBefore = firstTries.filter((a) => a.outcome !== 'acked' && a.endedAt < stopCalledAt);
    const failedAfterRecovery = firstTries.filter((a) => a.outcome !== 'acked' && a.startedAt > recoveredAt);
    const retriedCreated = retryResults.filter((a) => a.outcome === 'acked' && a.created).length;
    const retriedReplayed = retryResults.filter((a) => a.outcome === 'acked' && !a.created).length;

    const figures = {
      db_timeout_ms: DB_TIMEOUT_MS,
      clients_rest: REST_PEOPLE * STREAMS_PER_PERSON,
      clients_socket: SOCKET_PEOPLE * STREAMS_PER_PERSON,
      database_stop_ms: outageStart - stopCalledAt,
      outage_ms: outageMs,
      database_start_ms: dbBackAt - startCalledAt,
      sends_during_outage: during.length,
      failed_sends: failed.length,
      max_failed_send_latency_ms: round(Math.max(0, ...failedLatencies)),
      p50_failed_send_latency_ms: round(percentile(failedLatencies, 50)),
      p99_failed_send_latency_ms: round(percentile(failedLatencies, 99)),
      failed_latency_by_db_timeouts: JSON.stringify(
        countBy(failedLatencies, (ms) => `<=${Math.max(1, Math.ceil(ms / DB_TIMEOUT_MS - 0.05))}x`),
      ),
      max_send_latency_during_outage_ms: round(Math.max(0, ...duringLatencies)),
      health_down_after_ms: healthDown.length ? healthDown[0]!.at - outageStart : -1,
      recovery_ms: recoveryMs,
      health_recovery_ms: healthOkAgain ? healthOkAgain.at - startCalledAt : -1,
      attempts: attempts.length,
      acknowledged: ackedClientIds.size,
      retried: unacked.length,
      retried_created: retriedCreated,
      retried_found_stored: retriedReplayed,
      stored: ours.length,
      duplicates,
      stored_never_acknowledged: storedUnacked.length,
      seq_gaps: seqGaps,
      failed_after_recovery: failedAfterRecovery.length,
      status_counts: JSON.stringify(statusCounts),
    };

    const evidence = (list: readonly Attempt[]) =>
      JSON.stringify(
        list.slice(0, 5).map(({ client, ...rest }) => ({
          client: client.label,
          started_ms_after_stop_call: rest.startedAt - stopCalledAt,
          ...rest,
          log: logLines({ client, ...rest }).slice(0, 5),
        })),
        null,
        1,
      );
    const checks: string[] = [];
    const notHeld: string[] = [];
    const check = (holds: boolean, sentence: string, detail: () => string) => {
      expect.soft(holds, `${sentence}\n${detail()}`).toBe(true);
      (holds ? checks : notHeld).push(sentence);
    };

    check(exited === undefined, 'The server process never exited.', () => `${exited}\n${server.output()}`);
    check(
      during.length > 0 && during.some((a) => a.outcome !== 'acked'),
      'Sends were made while the database was down, and they were refused.',
      () => evidence(during),
    );
    const wrong = failed.filter((a) =>
      a.client.via === 'rest'
        ? !(a.status === '503' && a.code === 'DATABASE_UNAVAILABLE')
        : !(a.status === 'error' && typeof a.code === 'string'),
    );
    check(
      wrong.length === 0,
      'Every refused send was 503 DATABASE_UNAVAILABLE over REST or an error frame with a code over a socket (never a 500, never a dropped connection).',
      () => evidence(wrong),
    );
    const slow = failed.filter((a) => a.latencyMs > FAIL_FAST_BOUND_MS);
    check(
      slow.length === 0,
      `Every refused send was answered within DB_TIMEOUT_MS + 3 s (${FAIL_FAST_BOUND_MS} ms).`,
      () => evidence(slow),
    );
    const hung = during.filter((a) => a.latencyMs > FAIL_FAST_BOUND_MS);
    check(
      hung.length === 0,
      `Every send made during the outage was answered (acked or refused) within ${FAIL_FAST_BOUND_MS} ms.`,
      () => evidence(hung),
    );
    check(failedBefore.length === 0, 'No send failed before the outage.', () => evidence(failedBefore));
    check(healthDown.length > 0, 'GET /api/v2/health answered 503 with status down during the outage.', () =>
      JSON.stringify(healthDuring),
    );
    check(
      healthOkAgain !== undefined,
      'GET /api/v2/health answered 200 again after the database came back, without any restart.',
      () => JSON.stringify(healthDuring.slice(-10)),
    );
    check(failedAfterRecovery.length === 0, 'Once a send succeeded again, no later send failed.', () =>
      evidence(failedAfterRecovery),
    );
    check(
      retryResults.every((a) => a.outcome === 'acked'),
      'Every refused send, retried with its client_id after recovery, was acknowledged.',
      () => evidence(retryResults.filter((a) => a.outcome !== 'acked')),
    );
    check(
      missing.length === 0 && duplicates === 0,
      'Every acknowledged message is stored exactly once (counted by client_id in the channel history).',
      () =>
        `missing ${JSON.stringify(missing.slice(0, 10))}, duplicated ${JSON.stringify(
          Object.entries(storedCounts)
            .filter(([, count]) => count > 1)
            .slice(0, 10),
        )}\n${server.output().slice(-4000)}`,
    );
    check(
      storedUnacked.length === 0 && ours.length === stored.length,
      'No message is stored that was never acknowledged.',
      () => JSON.stringify(storedUnacked.slice(0, 5)),
    );
    check(
      ackMismatches.length === 0,
      'Every acknowledgement of a client_id (first send or retry) named the one stored message.',
      () => JSON.stringify(ackMismatches.slice(0, 5).map(([id, ids]) => [id, [...ids], storedById.get(id)])),
    );
    check(
      seqIncreasing && seqGaps === 0 && seqs[0] === 1,
      'The channel’s seq values are strictly increasing and gap-free (1..n).',
      () => `first ${seqs[0]}, last ${seqs.at(-1)}, count ${seqs.length}`,
    );
    check(
      JSON.stringify(changesIds) === JSON.stringify(historyIds),
      'The changes feed lists exactly the messages of the history.',
      () => `history ${historyIds.length}, changes ${changesIds.length}`,
    );

    recordSection('outage', {
      summary:
        `${clients.length} clients (${figures.clients_rest} over REST, ${figures.clients_socket} over sockets) sent ` +
        `continuously to one group channel; the database (FerretDB) was stopped for ${Math.round(outageMs / 100) / 10} s ` +
        `with DB_TIMEOUT_MS=${DB_TIMEOUT_MS}, then started again; refused sends were retried with their client_id.`,
      // A check that did not hold is named here too, so the report never reads better than the run.
      figures: { ...figures, checks_not_held: notHeld.length ? notHeld.join(' | ') : 'none' },
      checks,
    });
  });
});
