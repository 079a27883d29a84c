// What administrators can read about the running server: its effective configuration (secrets
// redacted, with the layer each value came from) and its log files.
import { assertCan, type Actor } from '../auth/permissions.js';
import { redactConfig, type Config, type ConfigSource } from '../config/index.js';
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
  ) {
    this.logs = new LogFiles(config.logging.dir);
  }

  configView(actor: Actor): ConfigView {
    assertCan(actor, 'config.read');
    return { config: redactConfig(this.config), sources: { ...this.sources } };
  }

  listLogs(actor: Actor): Promise<LogFile[]> {
    assertCan(actor, 'logs.read');
    return this.logs.list();
  }

  tailLog(actor: Actor, name: string, query: TailQuery) {
    assertCan(actor, 'logs.read');
    return this.logs.tail(name, query);
  }
}
