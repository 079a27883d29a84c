// The REST API under /api/v2: one encapsulated plugin, so the zod compilers apply to our routes only
// (third-party plugins keep their plain JSON-schema responses).
import { serializerCompiler, validatorCompiler } from '@fastify/type-provider-zod';
import type { FastifyPluginAsync } from 'fastify';
import healthRoutes from './health/index.js';

const apiRoutes: FastifyPluginAsync = async (fastify) => {
  fastify.setValidatorCompiler(validatorCompiler);
  fastify.setSerializerCompiler(serializerCompiler);
  await fastify.register(healthRoutes);
};

export default apiRoutes;
