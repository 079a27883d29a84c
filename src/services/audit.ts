// The one way to record an audit event. For now each event is a line in logs/audit.log; the security
// issue adds the tamper-evident store behind this same interface.
import type { Logger } from 'pino';
import type { RequestContext } from './context.js';

export interface AuditEvent {
  action: string;
  actor_id: string | null;
  target_type?: string;
  target_id?: string | null;
  details?: Record<string, unknown>;
  outcome?: 'success' | 'failure';
}

export class AuditService {
  constructor(private readonly log: Logger) {}

  record(event: AuditEvent, context: RequestContext): void {
    this.log.info(
      {
        audit: { outcome: 'success', ...event },
        request_id: context.requestId,
        ip: context.ip,
        user_agent: context.userAgent,
      },
      event.action,
    );
  }
}
