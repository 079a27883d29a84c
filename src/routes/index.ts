// The REST API under /api/v2: one encapsulated plugin, so the zod compilers apply to our routes only
// (third-party plugins keep their plain JSON-schema responses).
import { validatorCompiler } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import { serializerCompiler } from '../schemas/serializer.js';
import authenticatePlugin from '../plugins/app/authenticate.js';
import adminAnalyticsRoutes from './admin/analytics.js';
import adminAuditRoutes from './admin/audit.js';
import adminOpsRoutes from './admin/ops.js';
import adminSecurityRoutes from './admin/security.js';
import adminUsersRoutes from './admin/users.js';
import authRoutes from './auth/index.js';
import healthRoutes from './health/index.js';
import usersRoutes from './users/index.js';
import announcementsRoutes from './announcements/index.js';
import channelsRoutes from './channels/index.js';
import filesRoutes from './files/index.js';
import metricsRoutes from './metrics.js';
import messagesRoutes from './messages/index.js';
import notificationsRoutes from './notifications/index.js';
import realtimeRoutes from './realtime/index.js';

const apiRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.setValidatorCompiler(validatorCompiler);
  fastify.setSerializerCompiler(serializerCompiler);
  // Every route below requires a valid access token unless it is marked `config: { public: true }`.
  await fastify.register(authenticatePlugin);
  await fastify.register(healthRoutes);
  await fastify.register(metricsRoutes);
  await fastify.register(authRoutes);
  await fastify.register(usersRoutes);
  await fastify.register(adminUsersRoutes);
  await fastify.register(adminOpsRoutes);
  await fastify.register(adminSecurityRoutes);
  await fastify.register(adminAnalyticsRoutes);
  await fastify.register(adminAuditRoutes);
  await fastify.register(channelsRoutes);
  await fastify.register(messagesRoutes);
  await fastify.register(filesRoutes);
  await fastify.register(notificationsRoutes);
  await fastify.register(announcementsRoutes);
  await fastify.register(realtimeRoutes);
};

export default apiRoutes;
