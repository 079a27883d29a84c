// Helpers for the conversation tests: users with sessions, channels and messages made through the API,
// and a recorder of the events the services publish. Everything goes through the real app.
import type { FastifyInstance, InjectOptions } from 'fastify';
import { expect } from 'vitest';
import type { Audience, RealtimeEvent } from '../../src/services/events.js';
import type { PublicChannel } from '../../src/services/channels.js';
import type { PublicMessage } from '../../src/services/message-content.js';
import {
  bearer,
  identityOverrides,
  seedAndLogin,
  type InjectResponse,
  type SeedUser,
} from '../identity/fixtures.js';

export { expectError, expectValidation, unique, uniqueEmail } from '../identity/fixtures.js';

/**
 * Test config: a first admin, send limits out of the way unless a test asks for them, and no load
 * shedding (a busy test machine must not turn requests into 503; test/http/overload.test.ts covers it).
 */
export function conversationOverrides(extra: Record<string, Record<string, unknown>> = {}) {
  return identityOverrides(
    {},
    {
      ...extra,
      rate_limit: { messages_per_minute: 100_000, ...extra.rate_limit },
      server: { max_event_loop_delay_ms: 0, ...extra.server },
    },
  );
}

export interface Person {
  id: string;
  email: string;
  name: string;
  token: string;
  headers: { authorization: string };
}

export async function person(app: FastifyInstance, input: SeedUser = {}): Promise<Person> {
  const seeded = await seedAndLogin(app, input);
  return {
    id: seeded.user.id,
    email: seeded.email,
    name: seeded.user.name,
    token: seeded.tokens.access_token,
    headers: seeded.headers,
  };
}

/** An API call as `who` (undefined: anonymous). */
export function call(
  app: FastifyInstance,
  who: Person | undefined,
  method: InjectOptions['method'],
  url: string,
  payload?: unknown,
  query?: Record<string, string>,
): Promise<InjectResponse> {
  return app.inject({
    method,
    url: `/api/v2${url}`,
    headers: who ? bearer(who.token) : {},
    ...(payload !== undefined ? { payload: payload as InjectOptions['payload'] } : {}),
    ...(query ? { query } : {}),
  });
}

/** Calls and expects `status`; returns the parsed body. */
export async function ok<T = Record<string, unknown>>(
  response: Promise<InjectResponse> | InjectResponse,
  status = 200,
): Promise<T> {
  const resolved = await response;
  expect(resolved.statusCode, resolved.body).toBe(status);
  return (resolved.body ? resolved.json() : null) as T;
}

export async function createChannel(
  app: FastifyInstance,
  owner: Person,
  body: { name?: string; kind: string; members?: string[]; description?: string },
): Promise<PublicChannel> {
  return ok<PublicChannel>(call(app, owner, 'POST', '/channels', body), 201);
}

export async function send(
  app: FastifyInstance,
  sender: Person,
  body: Record<string, unknown>,
  status = 201,
): Promise<PublicMessage> {
  return ok<PublicMessage>(call(app, sender, 'POST', '/messages', body), status);
}

/** Records what the services publish, for assertions on events. */
export function recordEvents(app: FastifyInstance): {
  events: { event: RealtimeEvent; audience: Audience }[];
  stop: () => void;
  ofType: (type: string) => { event: RealtimeEvent; audience: Audience }[];
} {
  const events: { event: RealtimeEvent; audience: Audience }[] = [];
  const stop = app.events.subscribe((event, audience) => events.push({ event, audience }));
  return { events, stop, ofType: (type) => events.filter((entry) => entry.event.type === type) };
}
