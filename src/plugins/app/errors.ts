// One error handler for the whole server: every status ≥ 400 leaves in the contract's shape with a stable
// code; 4xx pass through, database outages become 503 DATABASE_UNAVAILABLE, and anything unexpected is
// logged with its context and masked as 500 INTERNAL_ERROR. Also the (rate-limited) 404 handler and the
// x-request-id response header.
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { isDatabaseUnavailable } from '../../db/errors.js';
import {
  ERROR_CODES,
  Errors,
  STATUS_FALLBACK_CODES,
  type ErrorBody,
  type ErrorDetail,
} from '../../errors.js';
import { redactUrl } from '../../logging/redact-url.js';

/** Fastify's own error codes that clients can cause, and what they mean in our contract. */
const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
};

/** Logged when a request fails because its client closed the connection before it was read. */
export const CLIENT_GONE = 'client closed the connection mid-request';

/** Codes we document; anything else (a third-party plugin's own code) falls back to a status code. */
const DOCUMENTED_CODES = new Set(ERROR_CODES.map((entry) => entry.code));

interface Described {
  statusCode: number;
  code: string;
  message: string;
  details?: ErrorDetail[];
  retryAfterS?: number;
}

export function describeError(
  error: FastifyError & { details?: ErrorDetail[]; retryAfterMs?: number },
): Described {
  if (isDatabaseUnavailable(error) || error.code === 'DATABASE_UNAVAILABLE') {
    return {
      statusCode: 503,
      code: 'DATABASE_UNAVAILABLE',
      message: new Errors.DATABASE_UNAVAILABLE().message,
      retryAfterS: 5,
    };
  }
  if (error.validation) {
    const details = error.validation.map((issue) => ({
      path: issue.instancePath.replace(/^\//, '').replaceAll('/', '.') || (error.validationContext ?? ''),
      message: issue.message ?? 'is invalid',
    }));
    return {
      statusCode: 400,
      code: 'VALIDATION_FAILED',
      message: `Invalid ${error.validationContext ?? 'input'}: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`,
      details,
    };
  }
  const status = error.statusCode ?? 500;
  // Our own 503s pass through; any other 5xx is a fault whose details stay in the log.
  if (status >= 500 && error.code !== 'SERVER_OVERLOADED') {
    return { statusCode: 500, code: 'INTERNAL_ERROR', message: new Errors.INTERNAL_ERROR().message };
  }
  const framework = error.code ? FRAMEWORK_CODES[error.code] : undefined;
  const code =
    framework ??
    (error.code && DOCUMENTED_CODES.has(error.code)
      ? error.code
      : (STATUS_FALLBACK_CODES[status] ?? 'BAD_REQUEST'));
  const retryAfterS = error.retryAfterMs !== undefined ? Math.ceil(error.retryAfterMs / 1000) : undefined;
  const message = framework === 'INVALID_JSON' ? new Errors.INVALID_JSON().message : error.message;
  return { statusCode: status, code, message, details: error.details, retryAfterS };
}

export function errorBody(request: FastifyRequest, described: Described): ErrorBody {
  const body: ErrorBody = {
    statusCode: described.statusCode,
    code: described.code,
    error: STATUS_CODES[described.statusCode] ?? 'Error',
    message: described.message,
    request_id: request.id,
  };
  if (described.details?.length) body.details = described.details;
  if (described.retryAfterS !== undefined) body.retry_after = described.retryAfterS;
  return body;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The stable code of the error this request was answered with, if any. */
    errorCode: string | null;
  }
}

export function sendError(request: FastifyRequest, reply: FastifyReply, described: Described): FastifyReply {
  request.errorCode = described.code; // counted by the metrics plugin
  if (described.retryAfterS !== undefined) void reply.header('retry-after', String(described.retryAfterS));
  void reply.header('x-request-id', request.id); // also for errors raised before our onRequest hook ran
  return reply
    .code(described.statusCode)
    .type('application/json; charset=utf-8')
    .send(errorBody(request, described));
}

export default fp(
  async function errorsPlugin(fastify, opts: { config: Config }) {
    fastify.decorateRequest('errorCode', null);
    // Set first thing, so every response (errors and shed load included) carries it.
    fastify.addHook('onRequest', (request, reply, done) => {
      void reply.header('x-request-id', request.id);
      done();
    });

    fastify.setErrorHandler((error: FastifyError, request, reply) => {
      const described = describeError(error);
      if (request.raw.socket?.destroyed) {
        // Nobody will read this answer, and the failure is most likely the hang-up itself.
        request.log.info({ err: error.message, url: redactUrl(request.url) }, CLIENT_GONE);
      } else if (described.code === 'DATABASE_UNAVAILABLE') {
        fastify.database?.markUnavailable(error);
        request.log.warn({ err: error.message, url: redactUrl(request.url) }, 'database unavailable');
      } else if (described.statusCode >= 500) {
        request.log.error({ err: error, request: requestContext(request) }, 'request failed');
      }
      if (described.statusCode === 413) drainRefusedBody(request, reply);
      return sendError(request, reply, described);
    });

    const notFound = (request: FastifyRequest, reply: FastifyReply) =>
      sendError(request, reply, {
        statusCode: 404,
        code: 'ROUTE_NOT_FOUND',
        message: new Errors.ROUTE_NOT_FOUND(request.method, request.url.split('?')[0]).message,
      });
    // Scanners walk unknown paths: each client gets a bounded number of 404s per minute.
    const preHandler = opts.config.rate_limit.enabled
      ? fastify.rateLimit({ max: opts.config.server.not_found_per_minute, timeWindow: 60_000 })
      : undefined;
    fastify.setNotFoundHandler(preHandler ? { preHandler } : {}, notFound);
  },
  { name: 'errors', dependencies: ['rate-limit'] },
);

/** How much of a refused body is read and dropped so its client can read the 413; more closes. */
const REFUSED_BODY_DRAIN_BYTES = 16 * 1024 * 1024;

/**
 * A body refused as too large is usually still on its way. Fastify closes such a connection as soon as it
 * answers, and a client still writing then often gets EPIPE and never reads the 413 (the fuzz suite's
 * "no answer"). So the rest is read and dropped instead, and the connection kept: up to
 * REFUSED_BODY_DRAIN_BYTES (then it is closed), and within REQUEST_TIMEOUT_MS like any request.
 */
function drainRefusedBody(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw;
  if (raw.complete) return;
  void reply.removeHeader('connection');
  let drained = 0;
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > REFUSED_BODY_DRAIN_BYTES) raw.socket.destroy();
  });
  raw.resume();
}

/** What a 5xx log line needs to reproduce the problem; headers are redacted by the logger. */
function requestContext(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactUrl(request.url),
    route: request.routeOptions?.url,
    headers: request.headers,
    remote_address: request.ip,
  };
}
