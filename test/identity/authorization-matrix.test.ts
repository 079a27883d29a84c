// The authorization matrix: every route the server registers × anonymous, member, moderator, admin and a
// disabled user (whose token was issued before the account was disabled), with the expected status in one
// table. The test fails when a route is registered without an entry here, or an entry names a route that
// no longer exists. Requests carry real ids and minimal valid bodies, so a status reflects authorization,
// not validation. HEAD routes mirror GET and are left out.
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { NO_REQUEST, SYSTEM_ACTOR, type Principal } from '../../src/services/context.js';
import { useTestApp } from '../helper.js';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  bearer,
  identityOverrides,
  loginOk,
  seedAndLogin,
  seedUser,
  strongPassword,
  unique,
  uniqueEmail,
} from './fixtures.js';
import { multipartBody, multipartHeaders } from '../files/fixtures.js';

const ROLES = ['anonymous', 'member', 'moderator', 'admin', 'disabled'] as const;
type MatrixRole = (typeof ROLES)[number];
type Statuses = Record<MatrixRole, number>;

interface Caller {
  token: string;
  email: string;
  password: string;
}

interface Context {
  app: FastifyInstance;
  /** The caller for this request (undefined for anonymous). */
  caller: Caller | undefined;
  /** A user to read (shared). */
  readTarget: string;
  /** A new user, for requests that change or act on their target. */
  newTarget(): Promise<string>;
  /** The first admin (owner of the channels and announcements made for a request). */
  admin: Principal;
  /** A plain member who writes the messages the requests act on. */
  author: Principal;
}

interface Entry {
  expect: Statuses;
  /** Path parameters, body and extra headers for the request. */
  request?: (ctx: Context) => Promise<Partial<InjectOptions> & { params?: Record<string, string> }>;
  /** The caller is a brand-new user of the role: the request changes the caller's own session or password. */
  freshCaller?: boolean;
}

const everyone = (status: number): Statuses => ({
  anonymous: status,
  member: status,
  moderator: status,
  admin: status,
  disabled: status,
});
const signedIn = (status: number): Statuses => ({
  anonymous: 401,
  member: status,
  moderator: status,
  admin: status,
  disabled: 401,
});
const adminOnly = (status: number): Statuses => ({
  anonymous: 401,
  member: 403,
  moderator: 403,
  admin: status,
  disabled: 401,
});

const TABLE: Record<string, Entry> = {
  // CORS preflight, for any path: public by nature.
  'OPTIONS *': {
    expect: everyone(204),
    request: async () => ({
      url: '/api/v2/users/me',
      headers: { origin: 'https://chat.example.com', 'access-control-request-method': 'GET' },
    }),
  },
  // API documentation (public).
  // The dashboard page and its assets are public (a sign-in form); its data comes from the admin API.
  'GET /admin': { expect: everyone(200) },
  'GET /admin/': { expect: everyone(200) },
  'GET /admin/assets/:file': {
    expect: everyone(200),
    request: async () => ({ params: { file: 'dashboard.js' } }),
  },
  'GET /api/v2/docs': { expect: everyone(200) },
  'GET /api/v2/docs/static/index.html': { expect: everyone(302) },
  'GET /api/v2/docs/static/swagger-initializer.js': { expect: everyone(200) },
  'GET /api/v2/docs/json': { expect: everyone(200) },
  'GET /api/v2/docs/yaml': { expect: everyone(200) },
  'GET /api/v2/docs/static/*': {
    expect: everyone(200),
    request: async () => ({ params: { '*': 'index.css' } }),
  },
  'GET /api/v2/openapi.json': { expect: everyone(200) },
  // Health (public).
  'GET /api/v2/health': { expect: everyone(200) },
  'GET /api/v2/health/live': { expect: everyone(200) },
  'GET /api/v2/health/ready': { expect: everyone(200) },
  // Auth.
  'POST /api/v2/auth/login': {
    expect: everyone(200),
    request: async ({ app }) => {
      const user = await seedUser(app);
      return { payload: { email: user.email, password: user.password } };
    },
  },
  'POST /api/v2/auth/refresh': {
    expect: everyone(200),
    request: async ({ app }) => {
      const user = await seedUser(app);
      const pair = await loginOk(app, user.email, user.password);
      return { payload: { refresh_token: pair.refresh_token } };
    },
  },
  'POST /api/v2/auth/set-password': {
    expect: everyone(204),
    request: async ({ app }) => {
      const { set_password_token: token } = await app.users.create(
        SYSTEM_ACTOR,
        { email: uniqueEmail('setpw'), name: 'Set Password', department: 'Matrix' },
        NO_REQUEST,
      );
      return { payload: { token, password: strongPassword() } };
    },
  },
  'POST /api/v2/auth/logout': { expect: signedIn(204), freshCaller: true },
  'GET /api/v2/auth/session': { expect: signedIn(200) },
  // The caller's own profile and password.
  'GET /api/v2/users/me': { expect: signedIn(200) },
  'PATCH /api/v2/users/me': {
    expect: signedIn(200),
    request: async () => ({ payload: { designation: 'Matrix tester' } }),
  },
  'POST /api/v2/users/me/password': {
    expect: signedIn(204),
    freshCaller: true,
    request: async ({ caller }) => ({
      payload: {
        current_password: caller?.password ?? 'Irrelevant-Password-1',
        new_password: strongPassword(),
      },
    }),
  },
  // Directory.
  'GET /api/v2/users': { expect: signedIn(200) },
  'GET /api/v2/users/:userId': {
    expect: signedIn(200),
    request: async ({ readTarget }) => ({ params: { userId: readTarget } }),
  },
  // Administration.
  'POST /api/v2/admin/users': {
    expect: adminOnly(201),
    request: async () => ({
      payload: { email: uniqueEmail('matrix'), name: 'Matrix Created', department: 'Matrix' },
    }),
  },
  'PATCH /api/v2/admin/users/:userId': {
    expect: adminOnly(200),
    request: async ({ newTarget }) => ({
      params: { userId: await newTarget() },
      payload: { department: 'Moved' },
    }),
  },
  'POST /api/v2/admin/users/:userId/unlock': {
    expect: adminOnly(200),
    request: async ({ newTarget }) => ({ params: { userId: await newTarget() } }),
  },
  'DELETE /api/v2/admin/users/:userId/sessions': {
    expect: adminOnly(200),
    request: async ({ newTarget }) => ({ params: { userId: await newTarget() } }),
  },
  'POST /api/v2/admin/users/import': {
    expect: adminOnly(200),
    request: async () => ({
      payload: { users: [{ email: uniqueEmail('imported'), name: 'Matrix Imported', department: 'Matrix' }] },
    }),
  },
};

// ---- conversation fixtures: made through the services, as the admin or a plain author ----

async function publicChannel(ctx: Context): Promise<string> {
  const { channel } = await ctx.app.channels.create(
    ctx.admin,
    { name: unique('matrix-pub'), kind: 'public' },
    NO_REQUEST,
  );
  return channel.id;
}

/** A group the admin owns, with `members` in it. */
async function groupChannel(ctx: Context, members: string[] = []): Promise<string> {
  const { channel } = await ctx.app.channels.create(
    ctx.admin,
    { name: unique('matrix-grp'), kind: 'group', members },
    NO_REQUEST,
  );
  return channel.id;
}

/** A message of the author in `general` (every signed-in caller is a member there). */
async function authorMessage(ctx: Context): Promise<string> {
  const { message } = await ctx.app.messages.send(ctx.author, { channel_id: 'general', content: 'matrix' });
  return message.id;
}

/** A message of the caller's own when the caller can send, else the author's. */
async function callerMessage(ctx: Context): Promise<string> {
  if (!ctx.caller) return authorMessage(ctx);
  const response = await ctx.app.inject({
    method: 'POST',
    url: '/api/v2/messages',
    headers: bearer(ctx.caller.token),
    payload: { channel_id: 'general', content: 'mine' },
  });
  return response.statusCode === 201 ? response.json<{ id: string }>().id : authorMessage(ctx);
}

/** Moderators manage any group's members; plain members only their own groups. */
const memberManagers = (status: number): Statuses => ({
  anonymous: 401,
  member: 403,
  moderator: status,
  admin: status,
  disabled: 401,
});

/** A group the plain member is not in is invisible to them (404), as if it did not exist. */
const groupManagers = (status: number): Statuses => ({ ...memberManagers(status), member: 404 });

const CONVERSATION_TABLE: Record<string, Entry> = {
  'GET /api/v2/channels': { expect: signedIn(200) },
  'POST /api/v2/channels': {
    expect: signedIn(201),
    request: async () => ({ payload: { name: unique('matrix-new'), kind: 'group' } }),
  },
  'GET /api/v2/channels/:channelId': {
    expect: signedIn(200),
    request: async () => ({ params: { channelId: 'general' } }),
  },
  'PATCH /api/v2/channels/:channelId': {
    expect: adminOnly(200),
    request: async (ctx) => ({
      params: { channelId: await publicChannel(ctx) },
      payload: { description: 'Changed' },
    }),
  },
  'DELETE /api/v2/channels/:channelId': {
    expect: adminOnly(200),
    request: async (ctx) => ({ params: { channelId: await publicChannel(ctx) } }),
  },
  'PUT /api/v2/channels/:channelId/preferences': {
    expect: signedIn(200),
    request: async () => ({ params: { channelId: 'general' }, payload: { muted: true } }),
  },
  'POST /api/v2/channels/:channelId/join': {
    expect: signedIn(200),
    request: async (ctx) => ({ params: { channelId: await publicChannel(ctx) } }),
  },
  'GET /api/v2/channels/:channelId/members': {
    expect: signedIn(200),
    request: async () => ({ params: { channelId: 'general' } }),
  },
  'POST /api/v2/channels/:channelId/members': {
    expect: groupManagers(200),
    request: async (ctx) => ({
      params: { channelId: await groupChannel(ctx) },
      payload: { members: [await ctx.newTarget()] },
    }),
  },
  'DELETE /api/v2/channels/:channelId/members/:userId': {
    expect: groupManagers(204),
    request: async (ctx) => {
      const target = await ctx.newTarget();
      return { params: { channelId: await groupChannel(ctx, [target]), userId: target } };
    },
  },
  'PATCH /api/v2/channels/:channelId/members/:userId': {
    expect: groupManagers(200),
    request: async (ctx) => {
      const target = await ctx.newTarget();
      return {
        params: { channelId: await groupChannel(ctx, [target]), userId: target },
        payload: { role: 'owner' },
      };
    },
  },
  'POST /api/v2/channels/:channelId/read': {
    expect: signedIn(200),
    request: async () => ({ params: { channelId: 'general' }, payload: { seq: 0 } }),
  },
  'GET /api/v2/channels/:channelId/messages': {
    expect: signedIn(200),
    request: async () => ({ params: { channelId: 'general' } }),
  },
  'GET /api/v2/channels/:channelId/changes': {
    expect: signedIn(200),
    request: async () => ({ params: { channelId: 'general' } }),
  },
  'POST /api/v2/messages': {
    expect: signedIn(201),
    request: async () => ({ payload: { channel_id: 'general', content: 'Hello from the matrix' } }),
  },
  'GET /api/v2/messages': {
    expect: signedIn(200),
    request: async () => ({ query: { channel_id: 'general' } }),
  },
  'PATCH /api/v2/messages/:messageId': {
    expect: signedIn(200),
    request: async (ctx) => ({
      params: { messageId: await callerMessage(ctx) },
      payload: { content: 'edited' },
    }),
  },
  // Delete for everyone: the sender, a moderator or an admin.
  'DELETE /api/v2/messages/:messageId': {
    expect: memberManagers(200),
    request: async (ctx) => ({ params: { messageId: await authorMessage(ctx) } }),
  },
  'POST /api/v2/messages/:messageId/hide': {
    expect: signedIn(204),
    request: async (ctx) => ({ params: { messageId: await authorMessage(ctx) } }),
  },
  'PUT /api/v2/messages/:messageId/reactions/:reaction': {
    expect: signedIn(200),
    request: async (ctx) => ({ params: { messageId: await authorMessage(ctx), reaction: '👍' } }),
  },
  'DELETE /api/v2/messages/:messageId/reactions/:reaction': {
    expect: signedIn(200),
    request: async (ctx) => ({ params: { messageId: await authorMessage(ctx), reaction: '👍' } }),
  },
  'GET /api/v2/search/messages': { expect: signedIn(200), request: async () => ({ query: { q: 'matrix' } }) },
  'GET /api/v2/notifications': { expect: signedIn(200) },
  'POST /api/v2/notifications/read': { expect: signedIn(200), request: async () => ({ payload: {} }) },
  'GET /api/v2/announcements': { expect: signedIn(200) },
  'POST /api/v2/announcements': {
    expect: adminOnly(201),
    request: async () => ({ payload: { title: 'Matrix', content: 'An announcement', priority: 'low' } }),
  },
  'DELETE /api/v2/announcements/:id': {
    expect: adminOnly(204),
    request: async (ctx) => {
      const created = await ctx.app.announcements.create(
        ctx.admin,
        { title: 'To delete', content: 'Soon gone' },
        NO_REQUEST,
      );
      return { params: { id: created.id } };
    },
  },
  // Realtime. The socket authenticates itself (ticket or bearer, answered with close codes over the
  // socket: test/realtime/connect.test.ts); a plain GET without an upgrade is not a socket.
  'POST /api/v2/ws/ticket': { expect: signedIn(200) },
  'GET /api/v2/ws/:userId': {
    expect: everyone(404),
    request: async (ctx) => ({ params: { userId: ctx.readTarget } }),
  },
  'GET /api/v2/events': { expect: signedIn(200), request: async () => ({ query: { wait_s: '0' } }) },
};
Object.assign(TABLE, CONVERSATION_TABLE);

// ---- files: a file of the author's, shared in `general` (every signed-in caller is a member there) ----

async function authorFile(ctx: Context): Promise<string> {
  const file = await ctx.app.files.upload(ctx.author, async function* () {
    yield {
      type: 'file' as const,
      name: 'file',
      filename: 'matrix.txt',
      declaredType: 'text/plain',
      stream: Readable.from([Buffer.from('matrix')]),
    };
  });
  await ctx.app.messages.send(ctx.author, { channel_id: 'general', content: 'file', attachments: [file.id] });
  return file.id;
}

const FILES_TABLE: Record<string, Entry> = {
  'POST /api/v2/files': {
    expect: signedIn(201),
    request: async () => ({
      headers: multipartHeaders(),
      payload: multipartBody([{ name: 'file', filename: 'matrix.txt', body: 'matrix' }]),
    }),
  },
  'GET /api/v2/files/:fileId': {
    expect: signedIn(200),
    request: async (ctx) => ({ params: { fileId: await authorFile(ctx) } }),
  },
  // The uploader or an admin (a member who can read it, moderator included, gets 403).
  'DELETE /api/v2/files/:fileId': {
    expect: adminOnly(204),
    request: async (ctx) => ({ params: { fileId: await authorFile(ctx) } }),
  },
};
Object.assign(TABLE, FILES_TABLE);

// ---- administrators' views of the running server ----
Object.assign(TABLE, {
  // Open like health unless METRICS_TOKEN is set (test/ops/metrics.test.ts covers the token).
  'GET /api/v2/metrics': { expect: everyone(200) },
  'GET /api/v2/admin/config': { expect: adminOnly(200) },
  'GET /api/v2/admin/analytics/activity': { expect: adminOnly(200) },
  'GET /api/v2/admin/analytics/errors': { expect: adminOnly(200) },
  'GET /api/v2/admin/analytics/users': { expect: adminOnly(200) },
  'GET /api/v2/admin/analytics/connections': { expect: adminOnly(200) },
  'GET /api/v2/admin/audit': { expect: adminOnly(200) },
  'GET /api/v2/admin/audit/verify': { expect: adminOnly(200) },
  'GET /api/v2/admin/security/events': { expect: adminOnly(200) },
  'GET /api/v2/admin/security/blocks': { expect: adminOnly(200) },
  // No ban in force for this address: an admin is let through to 404 BLOCK_NOT_FOUND.
  'DELETE /api/v2/admin/security/blocks/:key': {
    expect: adminOnly(404),
    request: async () => ({ params: { key: 'ip:203.0.113.77' } }),
  },
  'GET /api/v2/admin/logs': { expect: adminOnly(200) },
  'GET /api/v2/admin/logs/:name': {
    expect: adminOnly(200),
    request: async () => ({ params: { name: 'main.json' } }),
  },
} satisfies Record<string, Entry>);

/** The code an error status must carry for a role (anonymous: no credential; disabled: a dead token). */
function expectedCode(status: number, role: MatrixRole): string | undefined {
  if (status === 401) return role === 'anonymous' ? 'UNAUTHORIZED' : 'INVALID_TOKEN';
  if (status === 403) return 'FORBIDDEN';
  return undefined;
}

function fillUrl(template: string, params: Record<string, string> = {}): string {
  return template.replace(/:([A-Za-z_]+)|\*/g, (match, name: string | undefined) => {
    const value = params[name ?? '*'];
    if (value === undefined) throw new Error(`no value for ${match} in ${template}`);
    return name ? encodeURIComponent(value) : value;
  });
}

describe('authorization matrix', () => {
  const testApp = useTestApp(identityOverrides());
  const app = () => testApp().app;

  it('every route × every role answers as the table says', async () => {
    const registered = [
      ...new Set(
        app()
          .routeTable.filter((route) => route.method !== 'HEAD')
          .map((r) => `${r.method} ${r.url}`),
      ),
    ].sort();
    // A new route needs a row here; a row for a removed route must go.
    expect(Object.keys(TABLE).sort()).toEqual(registered);

    const admin = await loginOk(app(), ADMIN_EMAIL, ADMIN_PASSWORD);
    const callers: Record<Exclude<MatrixRole, 'anonymous'>, Caller> = {} as never;
    for (const role of ['member', 'moderator', 'admin', 'disabled'] as const) {
      const seeded = await seedAndLogin(app(), {
        roles: role === 'disabled' || role === 'member' ? ['member'] : [role],
        department: 'Matrix',
      });
      callers[role] = { token: seeded.tokens.access_token, email: seeded.email, password: seeded.password };
    }
    const disabledUser = await app().inject({
      method: 'PATCH',
      url: `/api/v2/admin/users/${encodeURIComponent(callers.disabled.email)}`,
      headers: bearer(admin.access_token),
      payload: { disabled: true },
    });
    expect(disabledUser.statusCode).toBe(200);
    const readTarget = (await seedUser(app(), { password: null, department: 'Matrix' })).user.id;
    const principalOf = (user: {
      id: string;
      email: string;
      name: string;
      department: string;
      roles: Principal['roles'];
    }) => ({
      id: user.id,
      sessionId: 'matrix',
      email: user.email,
      name: user.name,
      department: user.department,
      roles: user.roles,
    });
    const adminPrincipal = principalOf(admin.user);
    const author = principalOf((await seedUser(app(), { department: 'Matrix' })).user);

    const actual: Record<string, Statuses> = {};
    const wrongCodes: string[] = [];
    for (const [key, entry] of Object.entries(TABLE)) {
      const [method, template] = key.split(' ') as [InjectOptions['method'], string];
      actual[key] = {} as Statuses;
      for (const role of ROLES) {
        let caller: Caller | undefined = role === 'anonymous' ? undefined : callers[role];
        if (entry.freshCaller && (role === 'member' || role === 'moderator' || role === 'admin')) {
          const fresh = await seedAndLogin(app(), { roles: [role], department: 'Matrix' });
          caller = { token: fresh.tokens.access_token, email: fresh.email, password: fresh.password };
        }
        const context: Context = {
          app: app(),
          caller,
          readTarget,
          admin: adminPrincipal,
          author,
          newTarget: async () => (await seedUser(app(), { password: null, department: 'Matrix' })).user.id,
        };
        const { params, headers, ...rest } = (await entry.request?.(context)) ?? {};
        const response = await app().inject({
          method,
          url: template === '*' ? '/' : fillUrl(template, params),
          ...rest,
          headers: { ...(caller ? bearer(caller.token) : {}), ...(headers as Record<string, string>) },
        });
        actual[key][role] = response.statusCode;
        const code = expectedCode(response.statusCode, role);
        if (code && response.json<{ code?: string }>().code !== code)
          wrongCodes.push(
            `${key} as ${role}: ${response.statusCode} ${response.json<{ code?: string }>().code}`,
          );
        if (response.statusCode >= 500) wrongCodes.push(`${key} as ${role}: ${response.body}`);
      }
    }

    const expected = Object.fromEntries(Object.entries(TABLE).map(([key, entry]) => [key, entry.expect]));
    expect(actual).toEqual(expected);
    expect(wrongCodes).toEqual([]);
  });
});
