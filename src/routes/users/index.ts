// /api/v2/users: the staff directory and the caller's own profile and password.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { requestContext } from '../../plugins/app/authenticate.js';
import { errorResponses } from '../../schemas/error.js';
import {
  directoryQuery,
  directoryResponse,
  passwordChange,
  profilePatch,
  userParams,
  userSchema,
} from '../../schemas/users.js';

const usersRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];

  fastify.get(
    '/users/me',
    {
      schema: {
        tags: ['users'],
        summary: 'My profile',
        security,
        response: { 200: userSchema, ...errorResponses(401) },
      },
    },
    async (request) => fastify.users.toPublic(await fastify.users.resolve(request.principal.id)),
  );

  fastify.patch(
    '/users/me',
    {
      schema: {
        tags: ['users'],
        summary: 'Change my name, designation or avatar (not roles, department or email)',
        security,
        body: profilePatch,
        response: { 200: userSchema, ...errorResponses(400, 401) },
      },
    },
    async (request) => fastify.users.updateProfile(request.principal, request.body, requestContext(request)),
  );

  fastify.post(
    '/users/me/password',
    {
      schema: {
        tags: ['users'],
        summary: 'Change my password (current one required); my other sessions are signed out',
        security,
        body: passwordChange,
        response: { 204: z.null().describe('Changed'), ...errorResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { current_password: current, new_password: next } = request.body;
      await fastify.users.changePassword(request.principal, current, next, requestContext(request));
      return reply.code(204).send(null);
    },
  );

  fastify.get(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Staff directory: search by name or email prefix, filter by department, cursor paging',
        security,
        querystring: directoryQuery,
        response: { 200: directoryResponse, ...errorResponses(400, 401) },
      },
    },
    async (request) => fastify.users.directory(request.principal, request.query),
  );

  fastify.get(
    '/users/:userId',
    {
      schema: {
        tags: ['users'],
        summary: 'One user, by id or email',
        security,
        params: userParams,
        response: { 200: userSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => fastify.users.get(request.principal, request.params.userId),
  );
};

export default usersRoutes;
