// Authentication for every /api/v2 route unless the route says `config: { public: true }` (login,
// refresh, health, signed file links). Safe by default: a new route is protected unless marked public.
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Errors } from '../../errors.js';
import type { Principal, RequestContext } from '../../services/context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; set on every non-public route. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** No credential needed for this route. */
    public?: boolean;
    /** false: no access-log line unless the request fails (health probes). */
    accessLog?: boolean;
    /**
     * A request without an Authorization header but with `sig` in its query is let through for the route
     * to verify its signed link (file downloads); with the header it is authenticated as usual.
     */
    signedLink?: boolean;
  }
}

/** Reads `Authorization: Bearer <token>`; undefined when absent, INVALID_TOKEN when malformed. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header); // the scheme is case-insensitive (RFC 7235)
  if (!match) throw new Errors.INVALID_TOKEN();
  return match[1];
}

function hasSignature(request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.sig === 'string';
}

export function requestContext(request: FastifyRequest): RequestContext {
  const agent = request.headers['user-agent'];
  return {
    requestId: request.id,
    ip: request.ip ?? null,
    userAgent: typeof agent === 'string' ? agent.slice(0, 300) : null,
  };
}

export default fp(
  async function authenticatePlugin(fastify) {
    fastify.decorateRequest('principal', null as unknown as Principal);
    // Callback style: public routes (health probes) return at once, without allocating a promise.
    fastify.addHook('onRequest', (request, _reply, done) => {
      const { config } = request.routeOptions;
      if (config.public || request.is404) return done();
      if (config.signedLink && request.headers.authorization === undefined && hasSignature(request)) {
        return done();
      }
      let token: string | undefined;
      try {
        token = bearerToken(request);
        if (!token) throw new Errors.UNAUTHORIZED();
      } catch (error) {
        return done(error as Error);
      }
      fastify.auth.authenticate(token).then((principal) => {
        request.principal = principal;
        done();
      }, done);
    });
  },
  { name: 'authenticate', dependencies: ['services'] },
);
