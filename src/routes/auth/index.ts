// /api/v2/auth: login, token refresh, logout, one-time password setting, and the caller's session.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { requestContext } from '../../plugins/app/authenticate.js';
import {
  loginBody,
  refreshBody,
  sessionSchema,
  setPasswordBody,
  tokenPairSchema,
} from '../../schemas/auth.js';
import { errorResponses } from '../../schemas/error.js';
import { perAddressLimit } from '../../plugins/external/rate-limit.js';

const authRoutes: FastifyPluginAsyncZod = async (fastify) => {
  // Per address, on top of the lockout per account: slows down guessing across many accounts.
  const loginLimit = perAddressLimit(fastify.config, fastify.config.rate_limit.login_per_minute);
  fastify.post(
    '/auth/login',
    {
      config: { public: true, ...loginLimit },
      schema: {
        tags: ['auth'],
        summary: 'Log in with email (or identifier) and password',
        description:
          'Wrong password and unknown email get the same 401 INVALID_CREDENTIALS. After MAX_LOGIN_ATTEMPTS consecutive failures the account is locked: 423 ACCOUNT_LOCKED with retry_after (the lock doubles on each repeat, up to an hour). Too many failures from one address: 429 LOGIN_THROTTLED.',
        body: loginBody,
        response: { 200: tokenPairSchema, ...errorResponses(400, 401, 403, 423, 429) },
      },
    },
    async (request) => {
      const { email, identifier, password } = request.body;
      const { user, ...pair } = await fastify.auth.login(
        (email ?? identifier)!,
        password,
        requestContext(request),
      );
      return { ...pair, user: fastify.users.toPublic(user) };
    },
  );

  fastify.post(
    '/auth/refresh',
    {
      config: { public: true, ...loginLimit },
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new pair (the old one stops working)',
        description:
          'Presenting a refresh token that was already used revokes the whole session (401 INVALID_TOKEN).',
        body: refreshBody,
        response: { 200: tokenPairSchema, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => {
      const { user, ...pair } = await fastify.auth.refresh(
        request.body.refresh_token,
        requestContext(request),
      );
      return { ...pair, user: fastify.users.toPublic(user) };
    },
  );

  fastify.post(
    '/auth/logout',
    {
      schema: {
        tags: ['auth'],
        summary: 'Revoke the current session',
        security: [{ bearer: [] }],
        response: { 204: z.null().describe('Logged out'), ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      await fastify.auth.logout(request.principal, requestContext(request));
      return reply.code(204).send(null);
    },
  );

  fastify.post(
    '/auth/set-password',
    {
      config: { public: true },
      schema: {
        tags: ['auth'],
        summary: 'Set a password with a one-time set-password token',
        body: setPasswordBody,
        response: { 204: z.null().describe('Password set'), ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      await fastify.users.setPasswordWithToken(
        request.body.token,
        request.body.password,
        requestContext(request),
      );
      return reply.code(204).send(null);
    },
  );

  fastify.get(
    '/auth/session',
    {
      schema: {
        tags: ['auth'],
        summary: 'The caller’s session (cheap: no database read when recently checked)',
        security: [{ bearer: [] }],
        response: { 200: sessionSchema, ...errorResponses(401) },
      },
    },
    async (request) => ({
      user_id: request.principal.id,
      session_id: request.principal.sessionId,
      roles: request.principal.roles,
    }),
  );
};

export default authRoutes;
