// Security-relevant events (logins, lockouts, token abuse), written to logs/security.log. The detection
// plugin of the security issue consumes the same calls to score principals.
import type { Logger } from 'pino';
import type { RequestContext } from './context.js';

export interface SecurityEvent {
  type: string;
  principal: string;
  severity?: 'info' | 'warn';
  details?: Record<string, unknown>;
}

type Listener = (event: SecurityEvent, context: RequestContext) => void;

export class SecurityEvents {
  private readonly listeners: Listener[] = [];

  constructor(private readonly log: Logger) {}

  /** Lets the detection engine (security issue) see every event. */
  subscribe(listener: Listener): void {
    this.listeners.push(listener);
  }

  record(event: SecurityEvent, context: RequestContext): void {
    const entry = {
      security: { ...event },
      request_id: context.requestId,
      ip: context.ip,
      user_agent: context.userAgent,
    };
    if (event.severity === 'warn') this.log.warn(entry, event.type);
    else this.log.info(entry, event.type);
    for (const listener of this.listeners) listener(event, context);
  }
}
