// Fastify's per-request log lines, reshaped: no "incoming request" line, and one access line per request
// when it completes (method, route template, status, duration, caller) with credentials masked in the URL.
// Routes with `config: { accessLog: false }` (health probes) are logged only when they fail.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { redactUrl } from './redact-url.js';

export class AccessLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: 'request_id' });
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    // Health probes arrive every few seconds from load balancers and orchestrators: log them only when
    // they fail, or they would drown everything else.
    if (request.routeOptions?.config?.accessLog === false && reply.statusCode < 400 && !error) return;
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
