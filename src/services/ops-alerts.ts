// Ops alerts: when a watched figure (server errors per minute, event-loop delay p99, database ping)
// crosses its threshold, one warning goes to the main log and an `ops_alert` event to the administrators
// who are connected. Hysteresis keeps a flapping value quiet: an alert is raised above the threshold and
// cleared only once the value is back below CLEAR_FRACTION of it; nothing is sent in between.
import type { Audience, EventPublisher } from './events.js';

/** An alert clears below this share of its threshold. */
export const CLEAR_FRACTION = 0.8;

export interface AlertRule {
  /** Stable name, e.g. `error_rate`. */
  name: string;
  /** What the value means, for the log line: "server errors per minute". */
  what: string;
  threshold: number;
  /** The current value; null when unknown (e.g. the database was never reached). */
  read(): number | null;
}

export interface OpsAlert {
  alert: string;
  state: 'raised' | 'cleared';
  value: number;
  threshold: number;
  at: string;
}

export class OpsAlerts {
  private readonly raised = new Set<string>();

  constructor(
    private readonly rules: readonly AlertRule[],
    private readonly deps: {
      events: EventPublisher;
      adminIds(): Promise<string[]>;
      log: { warn(object: object, message: string): void; info(object: object, message: string): void };
      now?: () => Date;
    },
  ) {}

  /** Checks every rule once; returns the alerts raised or cleared by this check. */
  async evaluate(): Promise<OpsAlert[]> {
    const changes: OpsAlert[] = [];
    for (const rule of this.rules) {
      if (rule.threshold <= 0) continue; // turned off
      const value = rule.read();
      if (value === null) continue;
      const at = (this.deps.now?.() ?? new Date()).toISOString();
      if (!this.raised.has(rule.name) && value > rule.threshold) {
        this.raised.add(rule.name);
        const alert: OpsAlert = { alert: rule.name, state: 'raised', value, threshold: rule.threshold, at };
        this.deps.log.warn({ ops_alert: alert }, `ops alert: ${rule.what} ${value} above ${rule.threshold}`);
        changes.push(alert);
      } else if (this.raised.has(rule.name) && value < rule.threshold * CLEAR_FRACTION) {
        this.raised.delete(rule.name);
        const alert: OpsAlert = { alert: rule.name, state: 'cleared', value, threshold: rule.threshold, at };
        this.deps.log.info({ ops_alert: alert }, `ops alert cleared: ${rule.what} back to ${value}`);
        changes.push(alert);
      }
    }
    if (changes.length) await this.tellAdmins(changes);
    return changes;
  }

  /** The alerts currently raised. */
  active(): string[] {
    return [...this.raised];
  }

  private async tellAdmins(changes: readonly OpsAlert[]): Promise<void> {
    let audience: Audience;
    try {
      audience = { kind: 'users', userIds: await this.deps.adminIds() };
    } catch (error) {
      // The database may be what is failing: the log line above still carries the alert.
      this.deps.log.warn({ err: error }, 'ops alert not sent to admins: their ids could not be read');
      return;
    }
    for (const change of changes) this.deps.events.publish({ type: 'ops_alert', ...change }, audience);
  }
}
