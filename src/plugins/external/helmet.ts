// Security headers for a JSON API: nothing on our responses may load or frame anything.
// The docs UI sets its own, looser CSP on its own routes (see swagger.ts).
import helmet from '@fastify/helmet';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';

export default fp(
  async function helmetPlugin(fastify, opts: { config: Config }) {
    await fastify.register(helmet, {
      global: true,
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
        },
      },
      // Only meaningful when clients reach us over TLS (directly or through a proxy that terminates it).
      strictTransportSecurity: opts.config.server.behind_tls
        ? { maxAge: 31_536_000, includeSubDomains: true }
        : false,
      referrerPolicy: { policy: 'no-referrer' },
      frameguard: { action: 'deny' },
      crossOriginResourcePolicy: { policy: 'same-site' },
    });
  },
  { name: 'helmet' },
);
