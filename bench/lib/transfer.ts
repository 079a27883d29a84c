// The client side of bench:files, on node:http so that the client does as little as possible per byte:
// an upload writes one precomputed multipart/form-data body in one go, a download reads the body and
// drops it. Lanes (one keep-alive connection each) send one transfer after another for a fixed time; the
// same code drives every server, so only the server differs between them. Also the server's resident
// memory, read from /proc while transfers run.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { onCleanup } from './cleanup.js';

export const MIB = 1024 ** 2;

export interface Outcome {
  ok: boolean;
  /** File bytes moved (the payload of an upload, the body of a download). */
  bytes: number;
  ms: number;
  /** Why it failed: "413", "ECONNRESET", "short body"… */
  failure?: string;
  /** The response body of an upload (small JSON), for the checks before measuring. */
  body?: string;
}

export interface TransferRun {
  completed: number;
  failed: number;
  failures: Record<string, number>;
  bytes: number;
  seconds: number;
  mibPerS: number;
  perS: number;
  p50Ms: number;
  maxMs: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
onCleanup('close the file clients', () => agent.destroy());

/**
 * Random printable ASCII (valid UTF-8, no NUL) in lines of up to 100 characters: a text file any text
 * check accepts.
 */
export function textPayload(size: number): Buffer {
  const payload = randomBytes(size);
  for (let i = 0; i < size; i++) payload[i] = i % 100 === 99 ? 0x0a : 0x20 + (payload[i]! % 95);
  return payload;
}

export interface MultipartBody {
  body: Buffer;
  contentType: string;
  /** Where the file's bytes start in `body`. */
  payloadOffset: number;
  /** How many they are (what a server stores of the body). */
  fileBytes: number;
}

/** A multipart/form-data body with one file part named `field`. */
export function multipartBody(
  payload: Buffer,
  options: { field: string; filename: string; contentType: string },
): MultipartBody {
  const boundary = `----SwitchboardBench${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="${options.field}"; filename="${options.filename}"\r\n` +
      `Content-Type: ${options.contentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    body: Buffer.concat([head, payload, tail]),
    contentType: `multipart/form-data; boundary=${boundary}`,
    payloadOffset: head.length,
    fileBytes: payload.length,
  };
}

/** One upload of a prepared body; ok when the server answers `expectStatus`. */
export function upload(
  url: string,
  headers: Record<string, string>,
  body: MultipartBody,
  expectStatus = 201,
): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.request(url, {
      method: 'POST',
      agent,
      headers: { ...headers, 'content-type': body.contentType, 'content-length': body.body.length },
    });
    const fail = (failure: string, text?: string) =>
      resolve({ ok: false, bytes: 0, ms: performance.now() - started, failure, body: text });
    request.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
      response.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode !== expectStatus) return fail(String(response.statusCode), text);
        resolve({ ok: true, bytes: body.fileBytes, ms: performance.now() - started, body: text });
      });
    });
    request.end(body.body);
  });
}

/** One download, read and dropped; ok on 200 with exactly `expectBytes` bytes. */
export function download(
  url: string,
  headers: Record<string, string>,
  expectBytes: number,
): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.request(url, { method: 'GET', agent, headers });
    const fail = (failure: string) =>
      resolve({ ok: false, bytes: 0, ms: performance.now() - started, failure });
    request.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
    request.once('response', (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      response.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
      response.once('end', () => {
        if (response.statusCode !== 200) return fail(String(response.statusCode));
        if (bytes !== expectBytes) return fail(`${bytes} bytes instead of ${expectBytes}`);
        resolve({ ok: true, bytes, ms: performance.now() - started });
      });
    });
    request.end();
  });
}

/**
 * `lanes` loops, each running `transfer(lane, n)` one after another until `durationS` has passed (a
 * transfer under way then is finished and counted, and the time runs until the last one ends).
 */
export async function runLanes(
  lanes: number,
  durationS: number,
  transfer: (lane: number, n: number) => Promise<Outcome>,
): Promise<TransferRun> {
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const outcomes: Outcome[] = [];
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let n = 0; performance.now() < deadline; n++) outcomes.push(await transfer(lane, n));
    }),
  );
  return summarizeTransfers(outcomes, (performance.now() - started) / 1000);
}

export function summarizeTransfers(outcomes: readonly Outcome[], seconds: number): TransferRun {
  const done = outcomes.filter((outcome) => outcome.ok);
  const failures: Record<string, number> = {};
  for (const outcome of outcomes) {
    if (!outcome.ok) failures[outcome.failure!] = (failures[outcome.failure!] ?? 0) + 1;
  }
  const bytes = done.reduce((sum, outcome) => sum + outcome.bytes, 0);
  const times = done.map((outcome) => outcome.ms).sort((a, b) => a - b);
  return {
    completed: done.length,
    failed: outcomes.length - done.length,
    failures,
    bytes,
    seconds,
    mibPerS: bytes / MIB / seconds,
    perS: done.length / seconds,
    p50Ms: times.length ? times[Math.floor(times.length / 2)]! : Number.NaN,
    maxMs: times.length ? times[times.length - 1]! : Number.NaN,
  };
}

/** Resident memory of a process in bytes (VmRSS), or undefined where /proc is not available. */
export function readRss(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/** Runs `work` while reading the process's RSS every `everyMs`; the highest reading, work's result. */
export async function withPeakRss<T>(
  pid: number,
  everyMs: number,
  work: () => Promise<T>,
): Promise<{ result: T; peak: number; samples: number }> {
  let peak = readRss(pid) ?? Number.NaN;
  let samples = 1;
  const sample = () => {
    const rss = readRss(pid);
    if (rss === undefined) return;
    samples++;
    if (!(rss <= peak)) peak = rss;
  };
  const timer = setInterval(sample, everyMs);
  try {
    const result = await work();
    sample();
    return { result, peak, samples };
  } finally {
    clearInterval(timer);
  }
}
