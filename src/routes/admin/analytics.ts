// /api/v2/admin/analytics/activity, /errors, /connections and /users: counters over a time range, in minute, hour or day
// buckets (admins only; the analytics service checks the permission). Not registered when
// MONITORING_ENABLED=false.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { validationError } from '../../errors.js';
import { errorResponses } from '../../schemas/error.js';
import { GRANULARITY_MS } from '../../services/analytics.js';

/** The longest range each bucket size may cover, so an answer stays small. */
const MAX_RANGE_MS = {
  minute: 2 * GRANULARITY_MS.day,
  hour: 31 * GRANULARITY_MS.day,
  day: 400 * GRANULARITY_MS.day,
};

const rangeQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional().describe('Start (default: 24 hours before `to`)'),
  to: z.iso.datetime({ offset: true }).optional().describe('End, exclusive (default: now)'),
  bucket: z.enum(['minute', 'hour', 'day']).default('hour'),
});

const errorsResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    bucket: z.enum(['minute', 'hour', 'day']),
    series: z.array(z.object({ start: z.string(), count: z.number() })),
    groups: z.array(
      z.object({
        code: z.string(),
        route: z.string().describe('Route template, or "unmatched"'),
        count: z.number(),
        first_seen: z.string().nullable(),
        last_seen: z.string().nullable(),
        sample_request_id: z.string().nullable(),
      }),
    ),
  })
  .meta({ id: 'ErrorAnalytics' });

const activityResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    bucket: z.enum(['minute', 'hour', 'day']),
    series: z.array(
      z.object({
        start: z.string(),
        messages: z.record(z.string(), z.number()).describe('By channel kind'),
        uploads: z.number(),
        upload_bytes: z.number(),
      }),
    ),
    top_channels: z.array(z.object({ channel_id: z.string(), messages: z.number() })),
    active_users: z.object({
      daily: z.array(
        z.object({ day: z.string(), senders: z.number(), connectors: z.number(), users: z.number() }),
      ),
      weekly: z.object({ from: z.string(), to: z.string(), users: z.number() }),
    }),
  })
  .meta({ id: 'ActivityAnalytics' });

const usersQuery = z.strictObject({
  from: z.iso
    .datetime({ offset: true })
    .optional()
    .describe('Start (default: 7 days before `to`); whole days'),
  to: z.iso.datetime({ offset: true }).optional().describe('End, exclusive (default: now)'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

const usersResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    users: z.array(
      z.object({
        user_id: z.string(),
        name: z.string().nullable(),
        email: z.string().nullable(),
        last_seen_at: z.string().nullable(),
        messages_sent: z.number(),
        open_sessions: z.number(),
      }),
    ),
  })
  .meta({ id: 'UserAnalytics' });

const connectionsResponse = z
  .object({
    from: z.string(),
    to: z.string(),
    bucket: z.enum(['minute', 'hour', 'day']),
    current: z.number().describe('Sockets open on this instance now'),
    series: z.array(
      z.object({
        start: z.string(),
        opened: z.number(),
        closed: z.number(),
        peak: z.number().describe('Most sockets open at once (summed over instances)'),
        average_session_s: z.number().nullable().describe('Of the connections that closed in the bucket'),
      }),
    ),
  })
  .meta({ id: 'ConnectionAnalytics' });

function rangeOf(query: z.output<typeof rangeQuery>) {
  const to = query.to ? new Date(query.to) : new Date();
  const from = query.from ? new Date(query.from) : new Date(to.getTime() - GRANULARITY_MS.day);
  if (from >= to)
    throw validationError('from must be before to', [{ path: 'from', message: 'must be before to' }]);
  if (to.getTime() - from.getTime() > MAX_RANGE_MS[query.bucket]) {
    throw validationError('The range is too long for this bucket size', [
      {
        path: 'bucket',
        message: `at most ${MAX_RANGE_MS[query.bucket] / GRANULARITY_MS.day} days in ${query.bucket} buckets`,
      },
    ]);
  }
  return { from, to, bucket: query.bucket };
}

const analyticsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const analytics = fastify.analytics;
  if (!analytics) return;
  const security = [{ bearer: [] }];
  const tags = ['admin'];

  fastify.get(
    '/admin/analytics/activity',
    {
      schema: {
        tags,
        summary: 'Messages by channel kind, uploads, top channels, daily and weekly active users',
        security,
        querystring: rangeQuery,
        response: { 200: activityResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => analytics.activity(request.principal, rangeOf(request.query)),
  );

  fastify.get(
    '/admin/analytics/errors',
    {
      schema: {
        tags,
        summary: 'Error responses over time, and grouped by code and route',
        security,
        querystring: rangeQuery,
        response: { 200: errorsResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => analytics.errors(request.principal, rangeOf(request.query)),
  );

  fastify.get(
    '/admin/analytics/users',
    {
      schema: {
        tags,
        summary: 'Per-user activity: messages sent in the range, last seen, open sessions (never content)',
        security,
        querystring: usersQuery,
        response: { 200: usersResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => {
      const to = request.query.to ? new Date(request.query.to) : new Date();
      const from = request.query.from
        ? new Date(request.query.from)
        : new Date(to.getTime() - 7 * GRANULARITY_MS.day);
      if (from >= to)
        throw validationError('from must be before to', [{ path: 'from', message: 'must be before to' }]);
      if (to.getTime() - from.getTime() > MAX_RANGE_MS.day) {
        throw validationError('The range is too long', [{ path: 'from', message: 'at most 400 days' }]);
      }
      return analytics.users(request.principal, { from, to, limit: request.query.limit });
    },
  );

  fastify.get(
    '/admin/analytics/connections',
    {
      schema: {
        tags,
        summary: 'WebSocket connections over time: opened, closed, peak, average session',
        security,
        querystring: rangeQuery,
        response: { 200: connectionsResponse, ...errorResponses(400, 401, 403) },
      },
    },
    async (request) => analytics.connections(request.principal, rangeOf(request.query)),
  );
};

export default analyticsRoutes;
