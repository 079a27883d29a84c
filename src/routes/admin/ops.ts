// /api/v2/admin/config and /api/v2/admin/logs: what administrators can read about the running server.
// The ops service checks the permissions (config.read, logs.read) and records the reads in the audit trail.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { requestContext } from '../../plugins/app/authenticate.js';
import { errorResponses } from '../../schemas/error.js';
import {
  configViewResponse,
  logListResponse,
  logParams,
  logTailQuery,
  logTailResponse,
} from '../../schemas/ops.js';

const opsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['admin'];

  fastify.get(
    '/admin/config',
    {
      schema: {
        tags,
        summary: 'The effective configuration, secrets redacted, with the layer each value came from',
        security,
        response: { 200: configViewResponse, ...errorResponses(401, 403) },
      },
    },
    async (request) => fastify.ops.configView(request.principal, requestContext(request)),
  );

  fastify.get(
    '/admin/logs',
    {
      schema: {
        tags,
        summary: 'The log files in LOG_DIR, rotated ones included, newest first',
        security,
        response: { 200: logListResponse, ...errorResponses(401, 403) },
      },
    },
    async (request) => ({ files: await fastify.ops.listLogs(request.principal) }),
  );

  fastify.get(
    '/admin/logs/:name',
    {
      schema: {
        tags,
        summary: 'The last lines of a log file, filtered by time, level and text',
        description:
          '`name` is a listed file or a logical name (main.log, main.json, security.log, audit.log) for ' +
          'the file being written now. `since` and `level` read each line’s own time and level.',
        security,
        params: logParams,
        querystring: logTailQuery,
        response: { 200: logTailResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) =>
      fastify.ops.tailLog(
        request.principal,
        request.params.name,
        {
          tail: request.query.tail,
          since: request.query.since ? new Date(request.query.since) : undefined,
          level: request.query.level,
          q: request.query.q,
        },
        requestContext(request),
      ),
  );
};

export default opsRoutes;
