// The detection plugin against the labelled corpus in test/fixtures/detection (see SOURCES.md), through the
// running app: every attack payload in a structural position (query parameter, path parameter, header,
// login identifier, JSON body field, file name, WebSocket frame field), each attack from a principal of
// its own; every benign sample as the real request an ordinary user makes (messages over REST and over
// sockets, announcements, profiles, channels, searches, uploads, browser and tool user agents).
// Reports the rates and the misses, then asserts the targets: attacks observed on their first request
// ≥ 95% and banned within a burst of 5 ≥ 80%; benign never blocked, observed ≤ 1%.
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import type { InjectOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { SecurityEventRecord } from '../../src/security/engine.js';
import { matchSignatures } from '../../src/security/signatures.js';
import { person, type Person } from '../conversations/fixtures.js';
import { pdfDocument, pngImage, postForm } from '../files/fixtures.js';
import { ADMIN_EMAIL, ADMIN_PASSWORD, bearer, loginOk, type InjectResponse } from '../identity/fixtures.js';
import { connect, type TestSocket } from '../realtime/client.js';
import { useListeningApp } from '../realtime/fixtures.js';

const listening = useListeningApp({ security: { alert_score: 25, block_score: 35 } });

// ---- the corpus ----

type Category = 'sqli' | 'xss' | 'cmdi' | 'traversal' | 'nosql' | 'scanner';
const CATEGORIES: Category[] = ['sqli', 'xss', 'cmdi', 'traversal', 'nosql', 'scanner'];

interface Attack {
  id: string;
  category: Category;
  payload: string | Record<string, unknown>;
  source: string;
}

type Benign =
  | { id: string; kind: 'message'; content: string }
  | { id: string; kind: 'announcement'; title: string; content: string }
  | { id: string; kind: 'profile'; name: string; designation: string; bio: string }
  | { id: string; kind: 'channel'; name: string; description: string }
  | { id: string; kind: 'search'; q: string }
  | { id: string; kind: 'file_name'; file_name: string }
  | { id: string; kind: 'user_agent'; user_agent: string };

const fixture = <T>(name: string): T =>
  JSON.parse(fs.readFileSync(new URL(`../fixtures/detection/${name}`, import.meta.url), 'utf8')) as T;
const ATTACKS = fixture<Attack[]>('attacks.json');
const BENIGN = fixture<Benign[]>('benign.json');

/** The targets of the detection issue. */
const TARGETS = { attackObserved: 0.95, attackBlocked: 0.8, benignBlocked: 0, benignObserved: 0.01 };
/** A realistic burst: the same payload this many times in a row by the same principal. */
const BURST = 5;

// ---- where an attack goes ----

type Position =
  | 'query.department'
  | 'path.channelId'
  | 'header.user-agent'
  | 'header.referer'
  | 'login.email'
  | 'body.channel.name'
  | 'body.profile.name'
  | 'file_name'
  | 'frame.channel_id'
  | 'probe_path'
  | 'scanner_agent';

const SIGNED_IN: ReadonlySet<Position> = new Set<Position>([
  'body.channel.name',
  'body.profile.name',
  'file_name',
  'frame.channel_id',
]);

/** A value a raw HTTP header can carry as it is. */
const headerSafe = (value: string) => /^[\x20-\x7e]+$/.test(value);
/** A value a multipart `filename="…"` carries unchanged (busboy unescapes `\` in a quoted string). */
const filenameSafe = (value: string) => /^[^"\\\r\n]+$/.test(value);

/** Rotates the structural positions by index; a few attacks go as a file name or a frame field. */
function positionOf(attack: Attack, index: number): Position {
  const { payload } = attack;
  if (attack.category === 'scanner')
    return typeof payload === 'object' && 'path' in payload ? 'probe_path' : 'scanner_agent';
  if (typeof payload !== 'string') return index % 2 === 0 ? 'login.email' : 'body.channel.name';
  if (index % 20 === 7 && filenameSafe(payload)) return 'file_name';
  if (index % 20 === 13) return 'frame.channel_id';
  switch (index % 5) {
    case 0:
      return 'query.department';
    case 1:
      return 'path.channelId';
    case 2:
      return index % 10 === 2 && headerSafe(payload) ? 'header.user-agent' : 'header.referer';
    case 3:
      return 'login.email';
    default:
      return index % 10 === 4 ? 'body.channel.name' : 'body.profile.name';
  }
}

// ---- small genuine files ----

/** A genuine baseline JPEG: one 8×8 grey block (one-code Huffman tables, DC and AC both empty). */
function jpegImage(): Buffer {
  const segment = (marker: number, body: number[]) => [
    0xff,
    marker,
    (body.length + 2) >> 8,
    (body.length + 2) & 0xff,
    ...body,
  ];
  return Buffer.from([
    0xff,
    0xd8, // SOI
    ...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]), // JFIF 1.1, 1:1, no thumbnail
    ...segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]), // quantisation table 0: all ones
    ...segment(0xc0, [8, 0, 8, 0, 8, 1, 1, 0x11, 0]), // baseline, 8×8, one component
    ...segment(0xc4, [0x00, 1, ...new Array<number>(15).fill(0), 0x00]), // DC table 0: '0' = category 0
    ...segment(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0x00]), // AC table 0: '0' = end of block
    ...segment(0xda, [1, 1, 0x00, 0, 63, 0]), // start of scan
    0b00111111, // DC difference 0, end of block, padded with ones
    0xff,
    0xd9, // EOI
  ]);
}

/** A zip archive of stored (uncompressed) entries. */
function zipArchive(entries: [name: string, text: string][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const data = Buffer.from(text, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x5c21, 12); // date: 2026-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4); // made by
    central.writeUInt16LE(20, 6); // needed
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x5c21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** A minimal Office Open XML package (content types, package relationship, main part). */
function officeDocument(kind: 'docx' | 'xlsx' | 'pptx'): Buffer {
  const xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>';
  const main = {
    docx: {
      part: 'word/document.xml',
      type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml',
      body: '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Notes</w:t></w:r></w:p></w:body></w:document>',
    },
    xlsx: {
      part: 'xl/workbook.xml',
      type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml',
      body: '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>',
    },
    pptx: {
      part: 'ppt/presentation.xml',
      type: 'application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml',
      body: '<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>',
    },
  }[kind];
  return zipArchive([
    [
      '[Content_Types].xml',
      `${xml}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/${main.part}" ContentType="${main.type}"/></Types>`,
    ],
    [
      '_rels/.rels',
      `${xml}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="${main.part}"/></Relationships>`,
    ],
    [main.part, `${xml}${main.body}`],
  ]);
}

/**
 * Extensions the server refuses (not in ALLOWED_EXTENSIONS) are swapped for an allowed equivalent; the
 * rest of the name, which is what detection judges, is kept: IMG_4821.HEIC → IMG_4821.jpg,
 * "… v3.key" (Keynote) → "… v3.pdf", app.js.map → app.js.txt.
 */
const EXTENSION_SWAPS: Record<string, string> = { heic: 'jpg', key: 'pdf', map: 'txt' };

/** The name to upload and bytes that match its extension. */
function uploadFor(fileName: string): { name: string; body: Buffer } {
  const dot = fileName.lastIndexOf('.');
  let extension = fileName.slice(dot + 1).toLowerCase();
  let name = fileName;
  const swap = EXTENSION_SWAPS[extension];
  if (swap) {
    name = `${fileName.slice(0, dot)}.${swap}`;
    extension = swap;
  }
  switch (extension) {
    case 'png':
      return { name, body: pngImage() };
    case 'jpg':
    case 'jpeg':
      return { name, body: jpegImage() };
    case 'pdf':
      return { name, body: pdfDocument() };
    case 'docx':
    case 'xlsx':
    case 'pptx':
      return { name, body: officeDocument(extension) };
    case 'csv':
      return { name, body: Buffer.from('team,amount\nplatform,1200\n') };
    case 'txt':
    case 'md':
      return { name, body: Buffer.from('# Notes\n\nNothing to see here.\n') };
    default:
      throw new Error(`no sample bytes for .${extension} (${fileName})`);
  }
}

// ---- events ----

/** What a security event is matched on: the request's id, or the socket connection and frame number. */
type EventKey = { requestId: string } | { connectionId: string; frame: number };

const keyString = (key: EventKey) =>
  'requestId' in key ? `request:${key.requestId}` : `frame:${key.connectionId}#${key.frame}`;

async function allEvents(): Promise<Map<string, SecurityEventRecord[]>> {
  const { app } = listening();
  await app.detection!.settled();
  const events = await app.db.collection<SecurityEventRecord>('security_events').find({}).toArray();
  const byKey = new Map<string, SecurityEventRecord[]>();
  for (const event of events) {
    const keys: string[] = [];
    if (event.request_id) keys.push(keyString({ requestId: event.request_id }));
    if (event.connection_id && event.frame !== undefined)
      keys.push(keyString({ connectionId: event.connection_id, frame: event.frame }));
    for (const key of keys) byKey.set(key, [...(byKey.get(key) ?? []), event]);
  }
  return byKey;
}

const ruleSummary = (events: SecurityEventRecord[]) =>
  [...new Set(events.flatMap((event) => event.rules.map((rule) => `${rule.id}@${rule.where ?? '-'}`)))].join(
    ', ',
  );

function isBlocked(response: InjectResponse): boolean {
  if (response.statusCode !== 403) return false;
  try {
    return (response.json<{ code?: string }>().code ?? '') === 'BLOCKED';
  } catch {
    return false;
  }
}

const requestKey = (response: InjectResponse): EventKey => ({
  requestId: String(response.headers['x-request-id']),
});

const pct = (part: number, whole: number) => (whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(1)}%`);
const short = (value: unknown) => {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return JSON.stringify(text.length > 70 ? `${text.slice(0, 70)}…` : text);
};

/** The report is printed for the reader of the test output (the linter allows only warn and error). */
function report(lines: string[]): void {
  // eslint-disable-next-line no-console -- the corpus figures are this test's output
  console.log(lines.join('\n'));
}

// ---- results, shared by the tests below ----

interface AttackResult {
  attack: Attack;
  position: Position;
  principal: string;
  first: EventKey;
  statuses: number[];
  blocked: boolean;
  observed?: boolean;
}

interface BenignResult {
  entry: Benign;
  via: string;
  key: EventKey;
  ok: boolean;
  detail: string;
  blocked: boolean;
  observed?: SecurityEventRecord[];
}

const attackResults: AttackResult[] = [];
const benignResults: BenignResult[] = [];
const benignPrincipals: string[] = [];

describe('the detection corpus through the app', () => {
  it('sends every attack payload in a structural position, each from a principal of its own', async () => {
    const { app, port } = listening();
    const detection = app.detection!;
    // Signed-in attackers: a pool of users, each forgiven (lift: ban, score and offenses) between uses.
    const attackers: Person[] = [];
    for (let i = 0; i < 40; i++) attackers.push(await person(app));
    let nextAttacker = 0;
    let addressCounter = 0;
    const freshAddress = () => {
      const n = ++addressCounter;
      return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    };

    for (const [index, attack] of ATTACKS.entries()) {
      const position = positionOf(attack, index);
      const signedIn = SIGNED_IN.has(position);
      const user = signedIn ? attackers[nextAttacker++ % attackers.length]! : undefined;
      const address = signedIn ? '127.0.0.1' : freshAddress();
      const principal = user ? `user:${user.id}` : `ip:${address}`;
      const payload = attack.payload;
      const text = typeof payload === 'string' ? payload : '';
      const inject = (options: InjectOptions) =>
        app.inject({
          ...options,
          remoteAddress: address,
          headers: { ...(user ? bearer(user.token) : {}), ...(options.headers ?? {}) },
        });

      let socket: TestSocket | undefined;
      let connectionId = '';
      let frames = 0;
      /** One attempt: the request (or frame) carrying the payload; whether it was refused as banned. */
      const attempt = async (): Promise<{ status: number; blocked: boolean; key: EventKey }> => {
        let response: InjectResponse;
        switch (position) {
          case 'query.department':
            response = await inject({
              method: 'GET',
              url: `/api/v2/users?department=${encodeURIComponent(text)}`,
            });
            break;
          case 'path.channelId':
            response = await inject({ method: 'GET', url: `/api/v2/channels/${encodeURIComponent(text)}` });
            break;
          case 'header.user-agent':
            response = await inject({
              method: 'GET',
              url: '/api/v2/channels',
              headers: { 'user-agent': text },
            });
            break;
          case 'header.referer':
            response = await inject({
              method: 'GET',
              url: '/api/v2/channels',
              headers: { referer: `https://chat.example.com/c/x?ref=${encodeURIComponent(text)}` },
            });
            break;
          case 'login.email':
            response = await inject({
              method: 'POST',
              url: '/api/v2/auth/login',
              payload: { email: payload, password: 'x' },
            });
            break;
          case 'body.channel.name':
            response = await inject({
              method: 'POST',
              url: '/api/v2/channels',
              payload: { name: payload, kind: 'group' },
            });
            break;
          case 'body.profile.name':
            response = await inject({ method: 'PATCH', url: '/api/v2/users/me', payload: { name: text } });
            break;
          case 'file_name':
            response = await postForm(app, user, [
              { name: 'file', filename: text, contentType: 'text/plain', body: 'hello' },
            ]);
            break;
          case 'probe_path':
            response = await inject({ method: 'GET', url: (payload as { path: string }).path });
            break;
          case 'scanner_agent':
            response = await inject({
              method: 'GET',
              url: '/api/v2/health/live',
              headers: { 'user-agent': (payload as { user_agent: string }).user_agent },
            });
            break;
          case 'frame.channel_id': {
            socket ??= await connect(port, user!);
            connectionId ||= String(socket.ofType('hello')[0]!.connection_id);
            if (socket.closeCode === undefined) {
              frames += 1;
              await socket.request({ type: 'typing', channel_id: text }, 3000).catch(() => undefined);
            }
            // Frames are scored in the background: wait for the verdict.
            await detection.settled();
            const banned = detection.engine.banOf(principal) !== undefined || socket.closeCode === 4429;
            return { status: socket.closeCode ?? 0, blocked: banned, key: { connectionId, frame: frames } };
          }
        }
        return { status: response.statusCode, blocked: isBlocked(response), key: requestKey(response) };
      };

      const statuses: number[] = [];
      let first: EventKey | undefined;
      let blocked = false;
      for (let i = 0; i < BURST && !blocked; i++) {
        const outcome = await attempt();
        first ??= outcome.key;
        statuses.push(outcome.status);
        blocked = outcome.blocked;
      }
      if (detection.engine.banOf(principal)) blocked = true;
      await socket?.close();
      if (user) {
        // Everything this attacker set off is scored before it is forgiven for its next use.
        await detection.settled();
        await detection.engine.lift(principal);
      }
      attackResults.push({ attack, position, principal, first: first!, statuses, blocked });
    }

    const events = await allEvents();
    for (const result of attackResults)
      result.observed = (events.get(keyString(result.first)) ?? []).some(
        (event) => event.principal === result.principal,
      );
    expect(attackResults).toHaveLength(ATTACKS.length);
  }, 180_000);

  it('sends every benign sample as the request an ordinary user makes', async () => {
    const { app, port } = listening();
    const users: Person[] = [];
    for (let i = 0; i < 15; i++) users.push(await person(app));
    const tokens = await loginOk(app, ADMIN_EMAIL, ADMIN_PASSWORD);
    const adminHeaders = bearer(tokens.access_token);
    benignPrincipals.push(
      ...users.map((user) => `user:${user.id}`),
      `user:${tokens.user.id}`,
      'ip:127.0.0.1',
    );

    const sockets = new Map<string, { socket: TestSocket; connectionId: string; frames: number }>();
    const socketOf = async (user: Person) => {
      let entry = sockets.get(user.id);
      if (!entry) {
        const socket = await connect(port, user);
        entry = { socket, connectionId: String(socket.ofType('hello')[0]!.connection_id), frames: 0 };
        sockets.set(user.id, entry);
      }
      return entry;
    };
    const as = (user: Person, options: InjectOptions) =>
      app.inject({ ...options, headers: { ...user.headers, ...(options.headers ?? {}) } });

    let messages = 0;
    for (const [index, entry] of BENIGN.entries()) {
      const user = users[index % users.length]!;
      let response: InjectResponse;
      let via: string;
      let expected = 200;
      switch (entry.kind) {
        case 'message': {
          messages += 1;
          if (messages % 5 === 0) {
            // About a fifth of the messages go over a socket, as the clients send them.
            const open = await socketOf(user);
            open.frames += 1;
            const answer = await open.socket
              .request({ type: 'chat_message', channel_id: 'general', content: entry.content })
              .catch((error: unknown) => ({ type: 'failed', error: String(error) }));
            benignResults.push({
              entry,
              via: 'frame chat_message',
              key: { connectionId: open.connectionId, frame: open.frames },
              ok: answer.type === 'ack',
              detail: JSON.stringify(answer).slice(0, 300),
              blocked: open.socket.closeCode === 4429,
            });
            continue;
          }
          via = 'POST /messages';
          expected = 201;
          response = await as(user, {
            method: 'POST',
            url: '/api/v2/messages',
            payload: { channel_id: 'general', content: entry.content },
          });
          break;
        }
        case 'announcement':
          via = 'POST /announcements (admin)';
          expected = 201;
          response = await app.inject({
            method: 'POST',
            url: '/api/v2/announcements',
            headers: adminHeaders,
            payload: { title: entry.title, content: entry.content },
          });
          break;
        case 'profile':
          // PATCH /users/me takes name, designation and avatar_file_id: there is no bio to send.
          via = 'PATCH /users/me';
          response = await as(user, {
            method: 'PATCH',
            url: '/api/v2/users/me',
            payload: { name: entry.name, designation: entry.designation },
          });
          break;
        case 'channel':
          if (entry.name === 'general') {
            // `general` exists on every server (creating it again is 409): its name goes in the path.
            via = 'GET /channels/:name';
            response = await as(user, { method: 'GET', url: `/api/v2/channels/${entry.name}` });
          } else {
            via = 'POST /channels';
            expected = 201;
            response = await as(user, {
              method: 'POST',
              url: '/api/v2/channels',
              payload: { name: entry.name, kind: 'group', description: entry.description },
            });
          }
          break;
        case 'search': {
          // The server refuses a query without a letter or digit (400 by design, nothing to search for):
          // such a sample (an emoji alone) is searched for together with a word.
          const q = /[\p{L}\p{N}]/u.test(entry.q) ? entry.q : `party ${entry.q}`;
          via = `GET /search/messages?q=${q}`;
          response = await as(user, {
            method: 'GET',
            url: `/api/v2/search/messages?q=${encodeURIComponent(q)}`,
          });
          break;
        }
        case 'file_name': {
          const file = uploadFor(entry.file_name);
          via = `POST /files (${file.name})`;
          expected = 201;
          response = await postForm(app, user, [
            { name: 'file', filename: file.name, contentType: 'application/octet-stream', body: file.body },
          ]);
          break;
        }
        case 'user_agent':
          via = 'GET /channels (user agent)';
          response = await as(user, {
            method: 'GET',
            url: '/api/v2/channels',
            headers: { 'user-agent': entry.user_agent },
          });
          break;
      }
      benignResults.push({
        entry,
        via,
        key: requestKey(response),
        ok: response.statusCode === expected,
        detail: `${response.statusCode} ${response.body.slice(0, 300)}`,
        blocked: isBlocked(response),
      });
    }
    for (const { socket } of sockets.values()) await socket.close();

    const events = await allEvents();
    for (const result of benignResults) result.observed = events.get(keyString(result.key)) ?? [];
    // Every benign request is valid: one that fails is a bug in this test, not a detection result.
    const failed = benignResults.filter((result) => !result.ok);
    expect(
      failed.map((result) => `${result.entry.id} ${result.via}: ${result.detail}`),
      'benign requests that did not succeed',
    ).toEqual([]);
    expect(benignResults).toHaveLength(BENIGN.length);
  }, 180_000);

  it('reports the rates and meets the targets', () => {
    const { app } = listening();
    expect(attackResults).toHaveLength(ATTACKS.length);
    expect(benignResults).toHaveLength(BENIGN.length);

    const observed = attackResults.filter((result) => result.observed).length;
    const blocked = attackResults.filter((result) => result.blocked).length;
    const frames = benignResults.filter((result) => 'connectionId' in result.key).length;
    const benignRequests = benignResults.length;
    const benignBlockedResults = benignResults.filter((result) => result.blocked);
    const bannedBenign = benignPrincipals.filter((principal) => app.detection!.engine.banOf(principal));
    const benignBlocked = benignBlockedResults.length + bannedBenign.length;
    const benignObserved = benignResults.filter((result) => result.observed!.length > 0);

    const lines = [
      `corpus: attacks ${ATTACKS.length}, observed ${pct(observed, ATTACKS.length)}, blocked within ${BURST} in a burst ${pct(blocked, ATTACKS.length)}; ` +
        `benign ${benignRequests - frames} (+${frames} frames), blocked ${benignBlocked}, observed ${pct(benignObserved.length, benignRequests)} (${benignObserved.length})`,
    ];
    for (const category of CATEGORIES) {
      const of = attackResults.filter((result) => result.attack.category === category);
      lines.push(
        `  ${category.padEnd(9)} ${String(of.length).padStart(3)}: observed ${pct(of.filter((r) => r.observed).length, of.length).padStart(6)}, ` +
          `blocked ${pct(of.filter((r) => r.blocked).length, of.length).padStart(6)}`,
      );
    }
    const positions = [...new Set(attackResults.map((result) => result.position))];
    for (const position of positions) {
      const of = attackResults.filter((result) => result.position === position);
      lines.push(
        `  @${position.padEnd(18)} ${String(of.length).padStart(3)}: observed ${pct(of.filter((r) => r.observed).length, of.length).padStart(6)}, ` +
          `blocked ${pct(of.filter((r) => r.blocked).length, of.length).padStart(6)}`,
      );
    }
    const missed = attackResults.filter((result) => !result.observed);
    lines.push(`attacks not observed on the first request (${missed.length}):`);
    for (const result of missed) {
      const text = typeof result.attack.payload === 'string' ? result.attack.payload : '';
      const families = text ? matchSignatures(text).join('+') || 'no signature' : 'object';
      lines.push(`  ${result.attack.id} @${result.position} [${families}] ${short(result.attack.payload)}`);
    }
    const unblocked = attackResults.filter((result) => result.observed && !result.blocked);
    lines.push(`attacks observed but not blocked within ${BURST} (${unblocked.length}):`);
    for (const result of unblocked)
      lines.push(
        `  ${result.attack.id} @${result.position} statuses ${result.statuses.join(',')} ${short(result.attack.payload)}`,
      );
    lines.push(`benign observed (${benignObserved.length}):`);
    for (const result of benignObserved)
      lines.push(`  ${result.entry.id} ${result.via}: ${ruleSummary(result.observed!)}`);
    lines.push(`benign blocked (${benignBlocked}):`);
    for (const result of benignBlockedResults) lines.push(`  ${result.entry.id} ${result.via}`);
    for (const principal of bannedBenign) lines.push(`  banned: ${principal}`);
    report(lines);

    expect
      .soft(observed / ATTACKS.length, 'attacks observed on the first request')
      .toBeGreaterThanOrEqual(TARGETS.attackObserved);
    expect
      .soft(blocked / ATTACKS.length, `attacks blocked within a burst of ${BURST}`)
      .toBeGreaterThanOrEqual(TARGETS.attackBlocked);
    expect
      .soft(benignBlocked, 'benign requests blocked or benign principals banned')
      .toBe(TARGETS.benignBlocked);
    expect
      .soft(benignObserved.length / benignRequests, 'benign requests observed')
      .toBeLessThanOrEqual(TARGETS.benignObserved);
  });
});
