// /api/v2/channels: channels, members, read state, history by seq and the changes feed.
import type { FastifyPluginAsyncZod } from '@fastify/type-provider-zod';
import { z } from 'zod';
import { requestContext } from '../../plugins/app/authenticate.js';
import {
  addMembersBody,
  addMembersResponse,
  changesQuery,
  changesResponse,
  channelListQuery,
  channelListResponse,
  channelMemberParams,
  channelParams,
  channelSchema,
  createChannelBody,
  historyQuery,
  historyResponse,
  memberRoleBody,
  memberRoleResponse,
  membersQuery,
  membersResponse,
  preferencesBody,
  readBody,
  readResponse,
  updateChannelBody,
} from '../../schemas/conversations.js';
import { errorResponses } from '../../schemas/error.js';

const channelsRoutes: FastifyPluginAsyncZod = async (fastify) => {
  const security = [{ bearer: [] }];
  const tags = ['channels'];

  fastify.get(
    '/channels',
    {
      schema: {
        tags,
        summary: 'My channels (newest activity first, with unread counts), or public channels to join',
        security,
        querystring: channelListQuery,
        response: { 200: channelListResponse, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { scope, include_archived: includeArchived, cursor, limit } = request.query;
      if (scope === 'public') return fastify.channels.listPublic(request.principal, { cursor, limit });
      const channels = await fastify.channels.listMine(request.principal, { includeArchived });
      return { channels, next_cursor: null, has_more: false };
    },
  );

  fastify.post(
    '/channels',
    {
      schema: {
        tags,
        summary: 'Create a channel (a direct channel is returned as it is when it already exists)',
        security,
        body: createChannelBody,
        response: { 200: channelSchema, 201: channelSchema, ...errorResponses(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const { channel, created } = await fastify.channels.create(
        request.principal,
        request.body,
        requestContext(request),
      );
      return reply.code(created ? 201 : 200).send(channel);
    },
  );

  fastify.get(
    '/channels/:channelId',
    {
      schema: {
        tags,
        summary: 'One channel, by id or name',
        security,
        params: channelParams,
        response: { 200: channelSchema, ...errorResponses(401, 404) },
      },
    },
    async (request) => fastify.channels.get(request.principal, request.params.channelId),
  );

  fastify.patch(
    '/channels/:channelId',
    {
      schema: {
        tags,
        summary: 'Rename or describe a channel (owners; admins for any)',
        security,
        params: channelParams,
        body: updateChannelBody,
        response: { 200: channelSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      fastify.channels.update(
        request.principal,
        request.params.channelId,
        request.body,
        requestContext(request),
      ),
  );

  fastify.delete(
    '/channels/:channelId',
    {
      schema: {
        tags,
        summary: 'Archive a channel (never deleted: history stays readable, nobody can post)',
        security,
        params: channelParams,
        response: { 200: channelSchema, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) =>
      fastify.channels.archive(request.principal, request.params.channelId, requestContext(request)),
  );

  fastify.put(
    '/channels/:channelId/preferences',
    {
      schema: {
        tags,
        summary: 'Mute or hide a channel for me',
        security,
        params: channelParams,
        body: preferencesBody,
        response: { 200: channelSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) =>
      fastify.channels.updatePreferences(request.principal, request.params.channelId, request.body),
  );

  fastify.post(
    '/channels/:channelId/join',
    {
      schema: {
        tags,
        summary: 'Join a public channel',
        security,
        params: channelParams,
        response: { 200: channelSchema, ...errorResponses(401, 403, 404, 409) },
      },
    },
    async (request) =>
      fastify.channels.join(request.principal, request.params.channelId, requestContext(request)),
  );

  fastify.get(
    '/channels/:channelId/members',
    {
      schema: {
        tags,
        summary: 'Members of a channel, by user id, with cursor paging',
        security,
        params: channelParams,
        querystring: membersQuery,
        response: { 200: membersResponse, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) =>
      fastify.channels.listMembers(request.principal, request.params.channelId, request.query),
  );

  fastify.post(
    '/channels/:channelId/members',
    {
      schema: {
        tags,
        summary: 'Add members (owners; moderators and admins for any group or public channel)',
        security,
        params: channelParams,
        body: addMembersBody,
        response: { 200: addMembersResponse, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      fastify.channels.addMembers(
        request.principal,
        request.params.channelId,
        request.body.members,
        requestContext(request),
      ),
  );

  fastify.delete(
    '/channels/:channelId/members/:userId',
    {
      schema: {
        tags,
        summary: 'Remove a member; removing yourself leaves the channel',
        security,
        params: channelMemberParams,
        response: { 204: z.null().describe('Removed'), ...errorResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { channelId, userId } = request.params;
      await fastify.channels.removeMember(request.principal, channelId, userId, requestContext(request));
      return reply.code(204).send(null);
    },
  );

  fastify.patch(
    '/channels/:channelId/members/:userId',
    {
      schema: {
        tags,
        summary: 'Make a member an owner, or an owner a plain member (a group keeps at least one owner)',
        security,
        params: channelMemberParams,
        body: memberRoleBody,
        response: { 200: memberRoleResponse, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { channelId, userId } = request.params;
      return fastify.channels.setMemberRole(
        request.principal,
        channelId,
        userId,
        request.body.role,
        requestContext(request),
      );
    },
  );

  fastify.post(
    '/channels/:channelId/read',
    {
      schema: {
        tags,
        summary: 'Mark the channel read up to seq (only ever moves forward)',
        security,
        params: channelParams,
        body: readBody,
        response: { 200: readResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) =>
      fastify.channels.markRead(request.principal, request.params.channelId, request.body.seq),
  );

  fastify.get(
    '/channels/:channelId/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'History by seq: the latest messages, or before/after a seq (ascending seq order)',
        security,
        params: channelParams,
        querystring: historyQuery,
        response: { 200: historyResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => fastify.messages.history(request.principal, request.params.channelId, request.query),
  );

  fastify.get(
    '/channels/:channelId/changes',
    {
      schema: {
        tags: ['messages'],
        summary:
          'Every message created, edited, deleted or reacted to after since_seq, in order, as it is now',
        description:
          'Positions count every change in the channel (message.change_seq). A message seq is also a safe ' +
          'since_seq: it may return some messages the client already has, never fewer.',
        security,
        params: channelParams,
        querystring: changesQuery,
        response: { 200: changesResponse, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => fastify.messages.changes(request.principal, request.params.channelId, request.query),
  );
};

export default channelsRoutes;
