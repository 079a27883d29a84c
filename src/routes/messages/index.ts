// /api/v2/messages and /api/v2/search: sending (the seed's form), the seed's history form, edits,
// deletes, hiding, reactions and search.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { requestContext } from '../../plugins/app/authenticate.js';
import {
  editMessageBody,
  historyResponse,
  messageParams,
  messageSchema,
  reactionParams,
  reactionQuery,
  reactionResponse,
  searchQuery,
  searchResponse,
  seedHistoryQuery,
  sendMessageBody,
} from '../../schemas/conversations.js';
import { errorResponses } from '../../schemas/error.js';

const messagesRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['messages'];

  fastify.post(
    '/messages',
    {
      schema: {
        tags,
        summary:
          'Send a message to a channel or a person (201; 200 with the stored message for a repeated client_id)',
        description:
          'The sender is always the authenticated user: sender_id and sender_name in the body are ignored. ' +
          'A client_id already used by the same sender returns the first message (200) and never stores a ' +
          'second copy; reused with different content it is 409 CLIENT_ID_CONFLICT.',
        security,
        body: sendMessageBody,
        response: { 200: messageSchema, 201: messageSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const { sender_id: _senderId, sender_name: _senderName, ...input } = request.body;
      const { message, created } = await fastify.messages.send(request.principal, input);
      return reply.code(created ? 201 : 200).send(message);
    },
  );

  fastify.get(
    '/messages',
    {
      schema: {
        tags,
        summary: 'History in the seed’s form: by channel_id or recipient_id, cursors are message ids',
        security,
        querystring: seedHistoryQuery,
        response: { 200: historyResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => fastify.messages.seedHistory(request.principal, request.query),
  );

  fastify.patch(
    '/messages/:messageId',
    {
      schema: {
        tags,
        summary: 'Edit my message within the edit window',
        security,
        params: messageParams,
        body: editMessageBody,
        response: { 200: messageSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      fastify.messages.edit(request.principal, request.params.messageId, request.body.content),
  );

  fastify.delete(
    '/messages/:messageId',
    {
      schema: {
        tags,
        summary: 'Delete for everyone (sender, moderator or admin): leaves a tombstone with id and seq',
        security,
        params: messageParams,
        response: { 200: messageSchema, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) =>
      fastify.messages.remove(request.principal, request.params.messageId, requestContext(request)),
  );

  fastify.post(
    '/messages/:messageId/hide',
    {
      schema: {
        tags,
        summary: 'Hide a message for me only',
        security,
        params: messageParams,
        response: { 204: z.null().describe('Hidden'), ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await fastify.messages.hide(request.principal, request.params.messageId);
      return reply.code(204).send(null);
    },
  );

  fastify.put(
    '/messages/:messageId/reactions/:reaction',
    {
      schema: {
        tags,
        summary: 'Add my reaction (idempotent); ?replace=<old> replaces one of mine',
        security,
        params: reactionParams,
        querystring: reactionQuery,
        response: { 200: reactionResponse, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { messageId, reaction } = request.params;
      const old = request.query.replace;
      return fastify.messages.react(request.principal, messageId, {
        action: old === undefined ? 'add' : 'replace',
        reaction,
        old,
      });
    },
  );

  fastify.delete(
    '/messages/:messageId/reactions/:reaction',
    {
      schema: {
        tags,
        summary: 'Remove my reaction (idempotent)',
        security,
        params: reactionParams,
        response: { 200: reactionResponse, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      fastify.messages.react(request.principal, request.params.messageId, {
        action: 'remove',
        reaction: request.params.reaction,
      }),
  );

  fastify.get(
    '/search/messages',
    {
      schema: {
        tags,
        summary: 'Search my channels’ messages, newest first; the last word matches as a prefix',
        security,
        querystring: searchQuery,
        response: { 200: searchResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { before, after, ...rest } = request.query;
      return fastify.messages.search(request.principal, {
        ...rest,
        before: before ? new Date(before) : undefined,
        after: after ? new Date(after) : undefined,
      });
    },
  );
};

export default messagesRoutes;
