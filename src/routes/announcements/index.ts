// /api/v2/announcements: everyone reads published announcements; admins create (now or scheduled),
// see scheduled ones and delete.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { requestContext } from '../../plugins/app/authenticate.js';
import {
  announcementParams,
  announcementSchema,
  announcementsQuery,
  announcementsResponse,
  createAnnouncementBody,
} from '../../schemas/conversations.js';
import { errorResponses } from '../../schemas/error.js';

const announcementsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['announcements'];

  fastify.get(
    '/announcements',
    {
      schema: {
        tags,
        summary: 'Announcements, newest first (admins also see scheduled ones)',
        security,
        querystring: announcementsQuery,
        response: { 200: announcementsResponse, ...errorResponses(400, 401) },
      },
    },
    async (request) => fastify.announcements.list(request.principal, request.query),
  );

  fastify.post(
    '/announcements',
    {
      schema: {
        tags,
        summary: 'Create an announcement (admin): published now, or at scheduled_at',
        security,
        body: createAnnouncementBody,
        response: { 201: announcementSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { scheduled_at: scheduledAt, ...rest } = request.body;
      const announcement = await fastify.announcements.create(
        request.principal,
        { ...rest, scheduled_at: scheduledAt ? new Date(scheduledAt) : null },
        requestContext(request),
      );
      return reply.code(201).send(announcement);
    },
  );

  fastify.delete(
    '/announcements/:id',
    {
      schema: {
        tags,
        summary: 'Delete an announcement (admin)',
        security,
        params: announcementParams,
        response: { 204: z.null().describe('Deleted'), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await fastify.announcements.remove(request.principal, request.params.id, requestContext(request));
      return reply.code(204).send(null);
    },
  );
};

export default announcementsRoutes;
