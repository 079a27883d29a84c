// Fastify's per-request log lines, reshaped: no "incoming request" line, and one access line per request
// when it completes (method, route template, status, duration, caller) with credentials masked in the URL.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { redactUrl } from './redact-url.js';

export class AccessLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'request_id' });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    const entry = {
      method: request.method,
      url: redactUrl(request.url),
      route: request.routeOptions?.url,
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      remote_address: request.ip,
    };
    if (error || reply.statusCode >= 500) request.log.error(entry, 'request completed');
    else request.log.info(entry, 'request completed');
  }
}
