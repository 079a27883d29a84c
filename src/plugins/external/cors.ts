// CORS allow-list from CORS_ORIGINS. An empty list allows no cross-origin browser calls at all.
import cors from '@fastify/cors';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';

export default fp(
  async function corsPlugin(fastify, opts: { config: Config }) {
    const allowed = new Set(opts.config.server.cors_origins);
    await fastify.register(cors, {
      origin: allowed.has('*') ? true : [...allowed],
      credentials: allowed.size > 0 && !allowed.has('*'),
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
      exposedHeaders: [
        'X-Request-Id',
        'Retry-After',
        'X-RateLimit-Limit',
        'X-RateLimit-Remaining',
        'X-RateLimit-Reset',
      ],
      maxAge: 600,
      // A malformed preflight falls through to our handlers and gets the contract's error shape.
      strictPreflight: false,
    });
  },
  { name: 'cors' },
);
