// /api/v2/admin/audit and /api/v2/admin/audit/verify: the tamper-evident audit trail, read and checked
// (admins only; the audit service checks the permission, audit.read).
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { validationError } from '../../errors.js';
import { auditListQuery, auditListResponse, auditVerifyResponse } from '../../schemas/audit.js';
import { errorResponses } from '../../schemas/error.js';

const auditRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['admin'];

  fastify.get(
    '/admin/audit',
    {
      schema: {
        tags,
        summary: 'Audit records, newest first, filtered by actor, action, target and time',
        description:
          'Every security-relevant action (logins, account and role changes, channel and membership ' +
          'changes, moderators’ deletes, announcements, administrators’ reads of configuration and ' +
          'logs, bans) is one record. `action` matches exactly, or by prefix when it ends in `*` ' +
          '(`user.*`). Page back with `before` = `next_before` of the previous page.',
        security,
        querystring: auditListQuery,
        response: { 200: auditListResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const { actor, action, target, since, until, before, limit } = request.query;
      const range = {
        since: since ? new Date(since) : undefined,
        until: until ? new Date(until) : undefined,
      };
      if (range.since && range.until && range.since >= range.until)
        throw validationError('since must be before until', [
          { path: 'since', message: 'must be before until' },
        ]);
      return fastify.audit.list(request.principal, { actor, action, target, ...range, before, limit });
    },
  );

  fastify.get(
    '/admin/audit/verify',
    {
      schema: {
        tags,
        summary: 'Checks the whole audit chain: every hash, every link, no gaps',
        description:
          'Walks the records in seq order, recomputing each hash and checking that each record names ' +
          'the hash of the one before. `ok: false` names the first break: `hash_mismatch` (the record ' +
          'was edited), `prev_hash_mismatch` (the record before it was replaced), `missing_record` ' +
          '(a record was deleted). Reads the whole trail: meant for an administrator or a daily check.',
        security,
        response: { 200: auditVerifyResponse, ...errorResponses(401, 403) },
      },
    },
    async (request) => fastify.audit.verify(request.principal),
  );
};

export default auditRoutes;
