// Security headers for a JSON API, from helmet: nothing on our responses may load or frame anything.
// Our options never vary per request (no CSP nonces), so helmet runs once at start-up and every response
// gets the same precomputed headers; running it per request cost more than a whole bare request.
// The docs UI sets its own, looser CSP on its own routes (see swagger.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';
import type { Config } from '../../config/index.js';

export function securityHeaderOptions(config: Config): HelmetOptions {
  return {
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
    strictTransportSecurity: config.server.behind_tls
      ? { maxAge: 31_536_000, includeSubDomains: true }
      : false,
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    crossOriginResourcePolicy: { policy: 'same-site' },
    // Headers that only matter to HTML documents or to long-gone browsers and plug-ins: a JSON API does
    // not need them on every response.
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  };
}

/** The headers helmet would set, captured by running it once against a stand-in response. */
export function computeSecurityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
    getHeader: (name: string) => headers[name.toLowerCase()],
  };
  let failure: unknown;
  helmet(options)(
    {} as IncomingMessage,
    response as unknown as ServerResponse,
    (error?: unknown) => (failure = error),
  );
  if (failure) throw failure;
  return headers;
}

export default fp(
  async function securityHeadersPlugin(fastify, opts: { config: Config }) {
    const headers = computeSecurityHeaders(securityHeaderOptions(opts.config));
    fastify.addHook('onRequest', (_request, reply, done) => {
      void reply.headers(headers);
      done();
    });
  },
  { name: 'helmet' },
);
