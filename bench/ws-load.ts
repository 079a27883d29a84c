// bench:ws's load generator, in a process of its own (started by bench/lib/ws-driver.ts, driven over IPC).
// It holds every WebSocket of a run: members that count the chat frames they receive, and a sender.
// Members look for the benchmark's marker in a frame ("wsb:<seq>:<send time in µs>", inside the message
// content) with a byte search instead of parsing JSON, so that receiving costs as little as possible and
// the same for every server; the send time comes from this process's clock, so latencies need no clock sync.
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import WebSocket from 'ws';
import type {
  CloseCommand,
  ConnectCommand,
  ConnectResult,
  LatencyCommand,
  LatencyResult,
  LatencySummary,
  LoadCommand,
  LoadReply,
  QuietCommand,
  Target,
  ThroughputCommand,
  ThroughputResult,
} from './lib/ws-driver.js';

interface Client {
  ws: WebSocket;
  label: string;
  onFrame: (client: Client, data: Buffer) => void;
  /** Closed by us: not counted as a server-side close. */
  closing: boolean;
  /** Frames that were not benchmark messages (presence, unread counts, ...). */
  other: number;
}

const MARKER = Buffer.from('wsb:');
const HELLO = Buffer.from('"hello"');
const REF = Buffer.from('"ref"');
const FILLER = 'deploy review merge ticket sprint standup design budget';

const groups = new Map<string, Client[]>();
let nextSeq = 1;
/** Every frame received on any socket (to wait for quiet). */
let frameCount = 0;
let closes: Record<string, number> = {};
let onDelivery: ((seq: number, sentUs: number, client: Client) => void) | undefined;
let onAck: ((seq: number) => void) | undefined;
let onError: ((seq: number, code: string) => void) | undefined;

const nowUs = () => performance.now() * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);

function memberFrame(client: Client, data: Buffer): void {
  frameCount++;
  const at = data.indexOf(MARKER);
  if (at < 0) {
    client.other++;
    return;
  }
  let i = at + MARKER.length;
  let seq = 0;
  for (let c = data[i]!; c >= 48 && c <= 57; c = data[++i]!) seq = seq * 10 + c - 48;
  let sent = 0;
  for (let c = data[++i]!; c >= 48 && c <= 57; c = data[++i]!) sent = sent * 10 + c - 48;
  onDelivery?.(seq, sent, client);
}

function senderFrame(_client: Client, data: Buffer): void {
  frameCount++;
  if (data.indexOf(REF) < 0) return;
  let frame: { type?: string; ref?: unknown; code?: string };
  try {
    frame = JSON.parse(data.toString()) as typeof frame;
  } catch {
    return;
  }
  const seq = typeof frame.ref === 'string' && frame.ref.startsWith('m') ? Number(frame.ref.slice(1)) : 0;
  if (frame.type === 'ack') onAck?.(seq);
  else if (frame.type === 'error') onError?.(seq, frame.code ?? 'unknown');
}

function open(target: Target, timeoutMs: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target.url, {
      headers: target.headers,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: timeoutMs,
    });
    const client: Client = { ws, label: target.label, onFrame: memberFrame, closing: false, other: 0 };
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.closing = true;
      try {
        ws.terminate();
      } catch {
        // already gone
      }
      reject(new Error(reason));
    };
    const timer = setTimeout(() => fail('timeout'), timeoutMs);
    ws.on('unexpected-response', (request, response) => {
      response.resume();
      request.destroy();
      fail(`http ${response.statusCode}`);
    });
    ws.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
    ws.on('close', (code) => {
      if (!settled) fail(`close ${code}`);
      else if (!client.closing) bump(closes, String(code));
    });
    ws.on('message', (data: Buffer) => {
      if (settled) return client.onFrame(client, data);
      if (data.indexOf(HELLO) < 0) return;
      settled = true;
      clearTimeout(timer);
      resolve(client);
    });
  });
}

async function connect(command: ConnectCommand): Promise<ConnectResult> {
  const started = performance.now();
  const opened: Client[] = [];
  const failures: Record<string, number> = {};
  const times = createHistogram({ lowest: 1, highest: 600_000_000, figures: 3 });
  let next = 0;
  const worker = async () => {
    while (next < command.targets.length) {
      const target = command.targets[next++]!;
      const openedAt = nowUs();
      try {
        opened.push(await open(target, command.timeoutMs));
        times.record(Math.max(1, Math.round(nowUs() - openedAt)));
      } catch (error) {
        bump(failures, (error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.targets.length) }, worker));
  groups.set(command.group, [...(groups.get(command.group) ?? []), ...opened]);
  return {
    opened: opened.length,
    failed: command.targets.length - opened.length,
    seconds: (performance.now() - started) / 1000,
    p50Ms: times.count ? times.percentile(50) / 1000 : Number.NaN,
    p99Ms: times.count ? times.percentile(99) / 1000 : Number.NaN,
    failures,
  };
}

function members(names: string[]): Client[] {
  return names.flatMap((name) => {
    const group = groups.get(name);
    if (!group) throw new Error(`no group ${name}`);
    return group;
  });
}

function senders(name: string): Client[] {
  const group = members([name]);
  if (group.length === 0 || group.some((client) => client.ws.readyState !== WebSocket.OPEN)) {
    throw new Error(`senders ${name} are not open`);
  }
  for (const client of group) client.onFrame = senderFrame;
  return group;
}

function send(sender: Client, channelId: string): number {
  const seq = nextSeq++;
  const content = `wsb:${seq}:${Math.round(nowUs())} ${FILLER}`;
  sender.ws.send(JSON.stringify({ type: 'chat_message', id: `m${seq}`, channel_id: channelId, content }));
  return seq;
}

/** Starts counting a phase's closes and other frames; the function returns the members' other frames since. */
function startPhase(clients: Client[]): () => number {
  closes = {};
  const count = () => clients.reduce((sum, client) => sum + client.other, 0);
  const before = count();
  return () => count() - before;
}

function endPhase() {
  onDelivery = undefined;
  onAck = undefined;
  onError = undefined;
}

async function throughput(command: ThroughputCommand): Promise<ThroughputResult> {
  const all = senders(command.sender);
  const receivers = members(command.members);
  const count = receivers.length;
  interface Pending {
    remaining: number;
    acked: boolean;
    sentAt: number;
    sender: Client;
  }
  /** Each sender keeps its own window full. */
  const windows = new Map<Client, number>(all.map((sender) => [sender, 0]));
  const inflight = new Map<number, Pending>();
  const errorFrames: Record<string, number> = {};
  let measuring = false;
  let stopping = false;
  let deliveries = 0;
  let deliveriesTotal = 0;
  let completed = 0;
  let sent = 0;
  let acked = 0;
  let lost = 0;
  const finish = (seq: number) => {
    const pending = inflight.get(seq)!;
    inflight.delete(seq);
    windows.set(pending.sender, windows.get(pending.sender)! - 1);
    if (measuring) completed++;
    pump(pending.sender);
  };
  const pump = (sender: Client) => {
    while (!stopping && windows.get(sender)! < command.window && sender.ws.readyState === WebSocket.OPEN) {
      const seq = send(sender, command.channelId);
      inflight.set(seq, { remaining: count, acked: false, sentAt: performance.now(), sender });
      windows.set(sender, windows.get(sender)! + 1);
      sent++;
    }
  };
  const otherFrames = startPhase(receivers);
  onDelivery = (seq) => {
    const pending = inflight.get(seq);
    if (!pending) return;
    deliveriesTotal++;
    if (measuring) deliveries++;
    if (--pending.remaining === 0 && pending.acked) finish(seq);
  };
  onAck = (seq) => {
    const pending = inflight.get(seq);
    if (!pending) return;
    acked++;
    pending.acked = true;
    if (pending.remaining === 0) finish(seq);
  };
  onError = (seq, code) => {
    bump(errorFrames, code);
    const pending = inflight.get(seq);
    if (!pending) return;
    lost += pending.remaining;
    finish(seq);
  };
  const stalls = setInterval(() => {
    const before = performance.now() - command.stallMs;
    for (const [seq, pending] of inflight) {
      if (pending.sentAt >= before) break;
      lost += pending.remaining;
      finish(seq);
    }
  }, 100);
  try {
    for (const sender of all) pump(sender);
    await sleep(command.warmupS * 1000);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    measuring = true;
    await sleep(command.durationS * 1000);
    measuring = false;
    const measuredS = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    stopping = true;
    const drainUntil = performance.now() + command.stallMs + 500;
    while (inflight.size > 0 && performance.now() < drainUntil) await sleep(20);
    return {
      deliveriesPerS: deliveries / measuredS,
      messagesPerS: completed / measuredS,
      deliveries,
      deliveriesTotal,
      sent,
      acked,
      errorFrames,
      lost,
      otherFrames: otherFrames(),
      closes,
      loadCores: (cpu.user + cpu.system) / 1e6 / measuredS,
      measuredS,
    };
  } finally {
    clearInterval(stalls);
    endPhase();
  }
}

async function latency(command: LatencyCommand): Promise<LatencyResult> {
  const [sender] = senders(command.sender);
  const receivers = members(command.members);
  const count = receivers.length;
  const newHistogram = () => createHistogram({ lowest: 1, highest: 600_000_000, figures: 3 });
  const all = newHistogram();
  const byLabel = new Map<string, RecordableHistogram>();
  const errorFrames: Record<string, number> = {};
  let firstMeasured = Number.POSITIVE_INFINITY;
  let lastMeasured = 0;
  let received = 0;
  let acked = 0;
  const otherFrames = startPhase(receivers);
  onDelivery = (seq, sentUs, client) => {
    if (seq < firstMeasured || seq > lastMeasured) return;
    const us = Math.max(1, Math.round(nowUs() - sentUs));
    all.record(us);
    let histogram = byLabel.get(client.label);
    if (!histogram) byLabel.set(client.label, (histogram = newHistogram()));
    histogram.record(us);
    received++;
  };
  onAck = () => void acked++;
  onError = (_seq, code) => void bump(errorFrames, code);
  try {
    const intervalMs = 1000 / command.ratePerS;
    const warmupUntil = performance.now() + command.warmupS * 1000;
    let measuredSent = 0;
    let cpuBefore: NodeJS.CpuUsage | undefined;
    let measureStarted = 0;
    let sends = 0;
    const started = performance.now();
    const total = Math.round((command.warmupS + command.durationS) * command.ratePerS);
    while (sends < total && sender!.ws.readyState === WebSocket.OPEN) {
      const due = started + sends * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const measured = performance.now() >= warmupUntil;
      if (measured && !cpuBefore) {
        cpuBefore = process.cpuUsage();
        measureStarted = performance.now();
      }
      // Marked measured before the send: a delivery can never arrive before it is expected.
      if (measured) {
        if (firstMeasured === Number.POSITIVE_INFINITY) firstMeasured = nextSeq;
        lastMeasured = nextSeq;
      }
      send(sender!, command.channelId);
      if (measured) measuredSent++;
      sends++;
    }
    const expected = measuredSent * count;
    const drainUntil = performance.now() + command.drainMs;
    while (received < expected && performance.now() < drainUntil) await sleep(20);
    const cpu = process.cpuUsage(cpuBefore);
    const summary = (histogram: RecordableHistogram): LatencySummary => ({
      samples: histogram.count,
      p50Ms: histogram.count ? histogram.percentile(50) / 1000 : Number.NaN,
      p90Ms: histogram.count ? histogram.percentile(90) / 1000 : Number.NaN,
      p99Ms: histogram.count ? histogram.percentile(99) / 1000 : Number.NaN,
      maxMs: histogram.count ? histogram.max / 1000 : Number.NaN,
    });
    return {
      all: summary(all),
      byLabel: Object.fromEntries([...byLabel].map(([label, histogram]) => [label, summary(histogram)])),
      sent: measuredSent,
      acked,
      expected,
      received,
      errorFrames,
      otherFrames: otherFrames(),
      closes,
      loadCores: (cpu.user + cpu.system) / 1e6 / ((performance.now() - measureStarted) / 1000),
    };
  } finally {
    endPhase();
  }
}

async function quiet(command: QuietCommand): Promise<{ waitedMs: number; frames: number; quiet: boolean }> {
  members(command.groups);
  const started = performance.now();
  const firstCount = frameCount;
  let last = frameCount;
  let quietSince = started;
  while (performance.now() - started < command.timeoutMs) {
    await sleep(50);
    if (frameCount !== last) {
      last = frameCount;
      quietSince = performance.now();
    } else if (performance.now() - quietSince >= command.quietMs) {
      return { waitedMs: performance.now() - started, frames: frameCount - firstCount, quiet: true };
    }
  }
  return { waitedMs: performance.now() - started, frames: frameCount - firstCount, quiet: false };
}

async function close(command: CloseCommand): Promise<{ closed: number }> {
  const group = groups.get(command.group) ?? [];
  groups.delete(command.group);
  await Promise.all(
    group.map(
      (client) =>
        new Promise<void>((resolve) => {
          client.closing = true;
          if (client.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            client.ws.terminate();
            resolve();
          }, 5_000);
          client.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          client.ws.close(1000);
        }),
    ),
  );
  return { closed: group.length };
}

async function handle(command: LoadCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'connect':
      return connect(command);
    case 'throughput':
      return throughput(command);
    case 'latency':
      return latency(command);
    case 'quiet':
      return quiet(command);
    case 'close':
      return close(command);
  }
}

// The benchmark's end (even a kill) closes the IPC channel: leave with it.
process.once('disconnect', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
process.on('message', (message: { id: number } & LoadCommand) => {
  handle(message).then(
    (result) => process.send!({ id: message.id, ok: true, result } satisfies LoadReply),
    (error: unknown) =>
      process.send!({ id: message.id, ok: false, error: (error as Error).message } satisfies LoadReply),
  );
});
