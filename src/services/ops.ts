// What administrators can read about the running server: its effective configuration (secrets
// redacted, with the layer each value came from) and its log files. Each read of the configuration or
// of a log's lines goes to the audit trail.
import { assertCan, type Actor } from '../auth/permissions.js';
import { redactConfig, type Config, type ConfigSource } from '../config/index.js';
import type { AuditService } from './audit.js';
import type { RequestContext } from './context.js';
import { LogFiles, type LogFile, type TailQuery } from './log-files.js';

export interface ConfigView {
  /** The effective configuration, nested as in config.yaml, secrets replaced by "[REDACTED]". */
  config: Record<string, unknown>;
  /** Where each setting came from, by its dotted key: default, json, yaml, .env, env or generated. */
  sources: Record<string, ConfigSource>;
}

export class OpsService {
  private readonly logs: LogFiles;

  constructor(
    private readonly config: Readonly<Config>,
    private readonly sources: Readonly<Record<string, ConfigSource>>,
    private readonly audit: AuditService,
  ) {
    this.logs = new LogFiles(config.logging.dir);
  }

  configView(actor: Actor, context: RequestContext): ConfigView {
    assertCan(actor, 'config.read');
    const view = { config: redactConfig(this.config), sources: { ...this.sources } };
    this.audit.record(
      { action: 'admin.config_view', actor_id: actor.id, target_type: 'config', target_id: null },
      context,
    );
    return view;
  }

  listLogs(actor: Actor): Promise<LogFile[]> {
    assertCan(actor, 'logs.read');
    return this.logs.list();
  }

  async tailLog(actor: Actor, name: string, query: TailQuery, context: RequestContext) {
    assertCan(actor, 'logs.read');
    const result = await this.logs.tail(name, query);
    this.audit.record(
      {
        action: 'admin.log_read',
        actor_id: actor.id,
        target_type: 'log',
        target_id: result.file.name,
        details: {
          name,
          tail: query.tail,
          level: query.level,
          since: query.since,
          q: query.q,
          lines: result.lines.length,
        },
      },
      context,
    );
    return result;
  }
}
