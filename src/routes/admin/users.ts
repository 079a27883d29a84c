// /api/v2/admin/users: account administration (admins only; checked by the users service).
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { parse as parseCsv } from 'csv-parse/sync';
import { assertCan } from '../../auth/permissions.js';
import { Errors } from '../../errors.js';
import { requestContext } from '../../plugins/app/authenticate.js';
import { errorResponses } from '../../schemas/error.js';
import {
  adminCreateUser,
  adminCreateUserResponse,
  adminPatchUser,
  importResponse,
  revokeSessionsResponse,
  userParams,
  userSchema,
} from '../../schemas/users.js';
import { z } from 'zod';

const IMPORT_MAX_ROWS = 10_000;
const IMPORT_BODY_LIMIT = 5 * 1024 * 1024;

const adminUsersRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];

  // Only admins get past this point, before any body is read: a member's 5 MB upload is refused with 403
  // at once, not parsed. The services check the same permission again.
  fastify.addHook('onRequest', (request, _reply, done) => {
    try {
      assertCan(request.principal, 'user.manage');
      done();
    } catch (error) {
      done(error as Error);
    }
  });

  // Staff lists arrive as CSV (with a header row) as well as JSON.
  fastify.addContentTypeParser(
    'text/csv',
    { parseAs: 'string', bodyLimit: IMPORT_BODY_LIMIT },
    (_request, body, done) => {
      try {
        const rows = parseCsv(body as string, {
          columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
          skip_empty_lines: true,
          trim: true,
          bom: true,
        });
        done(null, rows);
      } catch (error) {
        done(
          new Errors.IMPORT_INVALID(`The CSV could not be read: ${(error as Error).message.split('\n')[0]}`),
          undefined,
        );
      }
    },
  );

  fastify.post(
    '/admin/users',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a user (without a password, a one-time set_password_token is returned)',
        security,
        body: adminCreateUser,
        response: { 201: adminCreateUserResponse, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const { user, set_password_token } = await fastify.users.create(
        request.principal,
        request.body,
        requestContext(request),
      );
      return reply.code(201).send({ ...user, ...(set_password_token ? { set_password_token } : {}) });
    },
  );

  fastify.patch(
    '/admin/users/:userId',
    {
      schema: {
        tags: ['admin'],
        summary: 'Change roles, department, team, designation, name, or disable/enable a user',
        description:
          'Disabling signs the user out everywhere. The last active admin cannot be demoted or disabled.',
        security,
        params: userParams,
        body: adminPatchUser,
        response: { 200: userSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { disabled, ...changes } = request.body;
      const status = disabled === undefined ? changes.status : disabled ? 'disabled' : 'active';
      return fastify.users.adminUpdate(
        request.principal,
        request.params.userId,
        { ...changes, status },
        requestContext(request),
      );
    },
  );

  fastify.post(
    '/admin/users/:userId/unlock',
    {
      schema: {
        tags: ['admin'],
        summary: 'Lift a login lockout',
        security,
        params: userParams,
        response: { 200: userSchema, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) =>
      fastify.users.unlock(request.principal, request.params.userId, requestContext(request)),
  );

  fastify.delete(
    '/admin/users/:userId/sessions',
    {
      schema: {
        tags: ['admin'],
        summary: 'Sign a user out everywhere (revokes all their sessions)',
        security,
        params: userParams,
        response: { 200: revokeSessionsResponse, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => ({
      revoked: await fastify.users.revokeSessions(
        request.principal,
        request.params.userId,
        requestContext(request),
      ),
    }),
  );

  fastify.post(
    '/admin/users/import',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: {
        tags: ['admin'],
        summary: 'Import a staff list (CSV with a header row, or JSON); idempotent on email',
        description:
          'Columns/fields: email, name, department, team, designation, roles ("admin;moderator"). New people are created with a one-time set_password_token; existing ones are updated; passwords are never touched. The report has one entry per row: created, updated, unchanged or rejected (with reason).',
        security,
        body: z.union([z.array(z.unknown()), z.strictObject({ users: z.array(z.unknown()) })]),
        consumes: ['application/json', 'text/csv'],
        response: { 200: importResponse, ...errorResponses(400, 401, 403, 413) },
      },
    },
    async (request) => {
      const rows = Array.isArray(request.body) ? request.body : request.body.users;
      if (rows.length > IMPORT_MAX_ROWS)
        throw new Errors.IMPORT_INVALID(`At most ${IMPORT_MAX_ROWS} rows per import`);
      return fastify.users.import(request.principal, rows, requestContext(request));
    },
  );
};

export default adminUsersRoutes;
