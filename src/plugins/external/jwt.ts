// @fastify/jwt for access tokens: HS256 only (a token claiming "none" or another algorithm is refused),
// keyed with a purpose-specific key derived from SECRET_KEY.
import jwt from '@fastify/jwt';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { deriveKey } from '../../lib/crypto.js';

export default fp(
  async function jwtPlugin(fastify, opts: { config: Config }) {
    await fastify.register(jwt, {
      secret: deriveKey(opts.config.auth.secret_key!, 'access-token'),
      sign: { algorithm: 'HS256' },
      // Verified tokens are cached (bounded, never past their expiry): every request presents one.
      verify: { algorithms: ['HS256'], cache: 10_000 },
    });
  },
  { name: 'jwt' },
);
