// /api/v2/notifications: the caller's stored notifications (mentions) and marking them read.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import {
  markNotificationsBody,
  markNotificationsResponse,
  notificationsQuery,
  notificationsResponse,
} from '../../schemas/conversations.js';
import { errorResponses } from '../../schemas/error.js';

const notificationsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['notifications'];

  fastify.get(
    '/notifications',
    {
      schema: {
        tags,
        summary: 'My notifications, newest first, with the unread count',
        security,
        querystring: notificationsQuery,
        response: { 200: notificationsResponse, ...errorResponses(400, 401) },
      },
    },
    async (request) => fastify.notifications.list(request.principal, request.query),
  );

  fastify.post(
    '/notifications/read',
    {
      schema: {
        tags,
        summary: 'Mark my notifications read: the listed ids, or all when ids is omitted',
        security,
        body: markNotificationsBody,
        response: { 200: markNotificationsResponse, ...errorResponses(400, 401) },
      },
    },
    async (request) => fastify.notifications.markRead(request.principal, request.body.ids ?? null),
  );
};

export default notificationsRoutes;
