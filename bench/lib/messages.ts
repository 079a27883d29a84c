// What the message benchmarks share: made-up sentences, public channels made through the API, the send
// load (POST /messages to random channels), and messages written straight into the database shaped
// exactly as the app stores them (src/services/message-content.ts storedMessage).
import type { NewMessage } from '../../src/services/message-content.js';
import type { AppServer } from './app.js';
import { runLoadOn } from './load.js';

export const WORDS = (
  'deploy release build review merge ticket sprint standup design budget invoice meeting lunch travel ' +
  'customer support incident outage rollback database server client report quarterly planning roadmap ' +
  'hiring onboarding feedback holiday schedule vendor contract security audit training workshop'
).split(' ');

export function pick<T>(values: readonly T[]): T {
  return values[Math.floor(Math.random() * values.length)]!;
}

export function sentence(words: number): string {
  return Array.from({ length: words }, () => pick(WORDS)).join(' ');
}

export async function createPublicChannel(
  app: AppServer,
  headers: Record<string, string>,
  name: string,
): Promise<string> {
  const response = await fetch(app.url('/api/v2/channels'), {
    method: 'POST',
    headers,
    body: JSON.stringify({ name, kind: 'public' }),
  });
  if (response.status !== 201)
    throw new Error(`channel ${name}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

/** POST `url` with a 12-word message to one of `channelIds` at random, from `connections` connections. */
export function sendLoad(
  server: Parameters<typeof runLoadOn>[0],
  options: {
    url: string;
    headers: Record<string, string>;
    channelIds: readonly string[];
    durationS: number;
    connections: number;
  },
) {
  return runLoadOn(server, {
    url: options.url,
    durationS: options.durationS,
    connections: options.connections,
    method: 'POST',
    headers: options.headers,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ channel_id: pick(options.channelIds), content: sentence(12) }),
        }),
      },
    ],
  });
}

export function seedMessage(channelId: string, content: string, createdAt: Date): NewMessage {
  return {
    channelId,
    channelKind: 'public',
    recipientId: null,
    senderId: 'bench',
    senderName: 'Bench',
    content,
    messageType: 'text',
    replyTo: null,
    attachments: [],
    clientId: undefined,
    createdAt,
  };
}
