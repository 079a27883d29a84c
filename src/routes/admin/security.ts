// /api/v2/admin/security: what the detection plugin recorded, the bans in force, and lifting one (admins
// only; the security service checks the permission). With DETECTION_ENABLED=false the routes answer
// 404 DETECTION_DISABLED rather than vanish, so the authorization matrix and clients see them alike.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { Errors } from '../../errors.js';
import { formatOptionalTimestamp, formatTimestamp } from '../../lib/time.js';
import { requestContext } from '../../plugins/app/authenticate.js';
import { errorResponses } from '../../schemas/error.js';
import { RULES } from '../../security/rules.js';
import type { SecurityEventRecord } from '../../security/engine.js';
import type { Ban } from '../../security/store.js';
import type { SecurityService } from '../../services/security.js';

const ACTIONS = ['observe', 'alert', 'block'] as const;

const eventsQuery = z.strictObject({
  principal: z
    .string()
    .max(200)
    .regex(/^(user|ip):/, { error: 'expected user:<id> or ip:<address>' })
    .optional()
    .describe('user:<id> or ip:<address>'),
  action: z.enum(ACTIONS).optional(),
  rule: z
    .string()
    .refine((id) => id in RULES, { error: 'not a rule id (see the README security section)' })
    .optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  before: z
    .string()
    .regex(/^[0-9a-f]{24}$/, { error: 'expected next_before of the previous page' })
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

const securityEvent = z.object({
  id: z.string(),
  at: z.string(),
  action: z.enum(ACTIONS),
  principal: z.string(),
  user_id: z.string().nullable(),
  ip: z.string().nullable(),
  score: z.number().describe("The principal's score after this event"),
  rules: z.array(
    z.object({ id: z.string(), category: z.string(), score: z.number(), where: z.string().optional() }),
  ),
  request_id: z.string().nullable(),
  method: z.string().nullable(),
  path: z.string().nullable(),
  connection_id: z.string().nullable(),
  frame: z.number().nullable().describe('The frame number on its connection'),
  frame_type: z.string().nullable(),
  ban_until: z.string().nullable(),
});

const eventsResponse = z
  .object({ events: z.array(securityEvent), has_more: z.boolean(), next_before: z.string().nullable() })
  .meta({ id: 'SecurityEvents' });

const ban = z.object({
  key: z.string().describe('user:<id> or ip:<address>: DELETE /admin/security/blocks/:key lifts it'),
  until: z.string(),
  retry_after: z.number().describe('Seconds left'),
  level: z.number().describe('1 for a first ban; each repeat within the offense memory doubles the length'),
  rules: z.array(z.string()),
  score: z.number(),
  created_at: z.string(),
});

const blocksResponse = z.object({ blocks: z.array(ban) }).meta({ id: 'SecurityBlocks' });

const blockParams = z.strictObject({
  key: z
    .string()
    .max(200)
    .regex(/^(user|ip):.+$/, { error: 'expected user:<id> or ip:<address>' }),
});

const adminSecurityRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const timezone = fastify.config.server.timezone;
  const security = [{ bearer: [] }];
  const service = (): SecurityService => {
    if (!fastify.security) throw new Errors.DETECTION_DISABLED();
    return fastify.security;
  };

  const toEvent = (event: SecurityEventRecord) => ({
    id: event._id,
    at: formatTimestamp(event.at, timezone),
    action: event.action,
    principal: event.principal,
    user_id: event.user_id,
    ip: event.ip,
    score: event.score,
    rules: event.rules,
    request_id: event.request_id ?? null,
    method: event.method ?? null,
    path: event.path ?? null,
    connection_id: event.connection_id ?? null,
    frame: event.frame ?? null,
    frame_type: event.frame_type ?? null,
    ban_until: formatOptionalTimestamp(event.ban_until, timezone),
  });
  const toBan = (entry: Ban) => ({
    key: entry.key,
    until: formatTimestamp(new Date(entry.until), timezone),
    retry_after: Math.max(1, Math.ceil((entry.until - Date.now()) / 1000)),
    level: entry.level,
    rules: entry.rules,
    score: entry.score,
    created_at: formatTimestamp(new Date(entry.created_at), timezone),
  });

  fastify.get(
    '/admin/security/events',
    {
      schema: {
        tags: ['admin'],
        summary: 'Security events (observe, alert, block), newest first',
        description:
          'Filters: principal (user:<id> or ip:<address>), action, rule id, time range. Page with `before` = next_before.',
        security,
        querystring: eventsQuery,
        response: { 200: eventsResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { limit, since, until, ...filter } = request.query;
      const page = await service().listEvents(
        request.principal,
        { ...filter, since: since ? new Date(since) : undefined, until: until ? new Date(until) : undefined },
        limit,
      );
      return { ...page, events: page.events.map(toEvent) };
    },
  );

  fastify.get(
    '/admin/security/blocks',
    {
      schema: {
        tags: ['admin'],
        summary: 'The bans in force, newest first',
        security,
        response: { 200: blocksResponse, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => ({ blocks: service().listBans(request.principal).map(toBan) }),
  );

  fastify.delete(
    '/admin/security/blocks/:key',
    {
      schema: {
        tags: ['admin'],
        summary: 'Lift a ban; the principal starts again with no score and no past offenses',
        description: 'The key is user:<id> or ip:<address> (URL-encoded). Audited as security.unban.',
        security,
        params: blockParams,
        response: { 204: z.null().describe('Lifted'), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await service().lift(request.principal, request.params.key, requestContext(request));
      return reply.code(204).send(null);
    },
  );
};

export default adminSecurityRoutes;
