// Layered configuration loader: defaults < config/config.json < config/config.yaml < .env < environment.
// Each layer is flattened to dotted keys so that we can merge deeply, remember where every value came from,
// and name that source when a value is rejected. This is the only module that reads process.env.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import YAML from 'yaml';
import type { z } from 'zod';
import {
  configSchema,
  ENV_KEYS,
  KNOWN_PLACEHOLDER_SECRETS,
  MIN_SECRET_LENGTH,
  SECRET_KEYS,
  type Config,
} from './schema.js';

export type { Config } from './schema.js';
export { ENV_KEYS, SECRET_KEYS } from './schema.js';

export type ConfigSource = 'default' | 'json' | 'yaml' | '.env' | 'env' | 'generated';

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Which layer each dotted key's value came from. */
  sources: Readonly<Record<string, ConfigSource>>;
  /** Problems that do not stop start-up (unknown keys, a generated development secret). */
  warnings: string[];
  /** The files that were read, for the start-up log. */
  files: string[];
}

export interface LoadConfigOptions {
  /** Environment variables; defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Folder holding .env and, by default, config/; defaults to the working directory. */
  cwd?: string;
  /** Highest-precedence values set by code (tests, benchmarks), given as nested keys. */
  overrides?: Record<string, unknown>;
}

/** Raised when the configuration cannot be used; `problems` has one line per bad value. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

interface LayerValue {
  value: unknown;
  source: ConfigSource | 'override';
  /** The name the user wrote: an environment variable, or the dotted key in a file. */
  origin: string;
}

const KNOWN_KEYS = collectLeafKeys(configSchema);
const ENV_BY_KEY = Object.fromEntries(Object.entries(ENV_KEYS).map(([env, key]) => [key, env]));

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const warnings: string[] = [];
  const problems: string[] = [];
  const files: string[] = [];

  const dotenvPath = path.join(cwd, '.env');
  const dotenvValues = readDotenv(dotenvPath, files);
  const configDir = path.resolve(cwd, env.CONFIG_DIR ?? dotenvValues.CONFIG_DIR ?? 'config');

  const merged = new Map<string, LayerValue>();
  const apply = (layer: Map<string, LayerValue>) => layer.forEach((entry, key) => merged.set(key, entry));

  for (const [file, source] of [
    ['config.json', 'json'],
    ['config.yaml', 'yaml'],
  ] as const) {
    const full = path.join(configDir, file);
    const parsed = readStructuredFile(full, source, problems);
    if (parsed === undefined) continue;
    files.push(full);
    const layer = flatten(parsed, source);
    for (const key of layer.keys()) {
      if (!KNOWN_KEYS.has(key)) {
        warnings.push(`unknown key "${key}" in ${full} (ignored)`);
        layer.delete(key);
      }
    }
    apply(layer);
  }
  apply(envLayer(dotenvValues, '.env', warnings));
  apply(envLayer(env, 'env'));
  if (options.overrides) apply(flatten(options.overrides, 'override'));

  const input = unflatten(merged);
  for (const group of Object.keys(configSchema.shape)) input[group] ??= {};
  const result = configSchema.safeParse(input);
  // The secret guard runs even when other values are bad, so every problem is reported in one go.
  const debug = configSchema.shape.server.shape.debug.safeParse(merged.get('server.debug')?.value ?? true);
  const secretProblem = debug.success ? checkSecret(debug.data, merged.get('auth.secret_key')) : undefined;
  if (!result.success) {
    for (const issue of result.error.issues) problems.push(describeIssue(issue, merged));
  }
  if (secretProblem) problems.push(secretProblem);
  if (!result.success || problems.length > 0) throw new ConfigError(problems);

  const config = result.data;
  const sources: Record<string, ConfigSource> = {};
  for (const key of KNOWN_KEYS) {
    const source = merged.get(key)?.source;
    sources[key] = source === undefined || source === 'override' ? 'default' : source;
  }

  if (!config.auth.secret_key) {
    // Development mode without a secret: a random one per process, so nothing predictable ever signs tokens.
    config.auth.secret_key = randomBytes(48).toString('base64url');
    sources['auth.secret_key'] = 'generated';
    warnings.push(
      'SECRET_KEY is not set: using a random secret for this process (DEBUG=true). Tokens will not survive a restart; set SECRET_KEY (32+ characters) and DEBUG=false in production.',
    );
  }

  return { config: deepFreeze(config), sources: Object.freeze(sources), warnings, files };
}

/** The effective configuration with secrets replaced, for logs and the admin view. */
export function redactConfig(config: Config): Record<string, unknown> {
  const flat = flatten(config as unknown as Record<string, unknown>, 'default');
  for (const key of SECRET_KEYS) {
    if (flat.has(key) && flat.get(key)!.value !== undefined)
      flat.set(key, { ...flat.get(key)!, value: '[REDACTED]' });
  }
  return unflatten(flat);
}

function checkSecret(debug: boolean, given: LayerValue | undefined): string | undefined {
  if (debug) return undefined;
  const secret = typeof given?.value === 'string' ? given.value.trim() : '';
  const where = given ? ` (from ${given.source} ${given.origin})` : '';
  if (!secret)
    return `auth.secret_key: SECRET_KEY is required when DEBUG=false; set it to 32 or more random characters`;
  if (KNOWN_PLACEHOLDER_SECRETS.has(secret.toLowerCase()))
    return `auth.secret_key${where}: a well-known placeholder value is not a secret; set SECRET_KEY to 32 or more random characters`;
  if (secret.length < MIN_SECRET_LENGTH)
    return `auth.secret_key${where}: ${secret.length} characters is too short when DEBUG=false; expected at least ${MIN_SECRET_LENGTH}`;
  return undefined;
}

function readDotenv(file: string, files: string[]): Record<string, string> {
  if (!fs.existsSync(file)) return {};
  files.push(file);
  return dotenv.parse(fs.readFileSync(file));
}

function readStructuredFile(
  file: string,
  source: 'json' | 'yaml',
  problems: string[],
): Record<string, unknown> | undefined {
  if (!fs.existsSync(file)) return undefined;
  const text = fs.readFileSync(file, 'utf8');
  try {
    const parsed: unknown = source === 'json' ? JSON.parse(text) : YAML.parse(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${file}: expected a mapping of settings at the top level`);
      return undefined;
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    // Parser messages quote the text around the error, which may be a secret: report only where it is.
    problems.push(`${file}: not valid ${source.toUpperCase()}${errorPosition(error as Error, text)}`);
    return undefined;
  }
}

/** " at line L, column C" for a parse error, without quoting the file's content. */
function errorPosition(error: Error & { linePos?: { line: number; col: number }[] }, text: string): string {
  const yamlPos = error.linePos?.[0];
  if (yamlPos) return ` at line ${yamlPos.line}, column ${yamlPos.col}`;
  const offset = /position (\d+)/.exec(error.message)?.[1];
  if (offset === undefined) return '';
  const before = text.slice(0, Number(offset)).split('\n');
  return ` at line ${before.length}, column ${before.at(-1)!.length + 1}`;
}

function envLayer(
  values: Record<string, string | undefined>,
  source: '.env' | 'env',
  warnings?: string[],
): Map<string, LayerValue> {
  const layer = new Map<string, LayerValue>();
  for (const [name, value] of Object.entries(values)) {
    const key = ENV_KEYS[name];
    if (key === undefined) {
      if (warnings && name !== 'CONFIG_DIR') warnings.push(`unknown key "${name}" in .env (ignored)`);
      continue;
    }
    if (value === undefined) continue;
    layer.set(key, { value, source, origin: name });
  }
  return layer;
}

/** Nested object → dotted keys. Arrays are values, not branches: a later layer replaces a list whole. */
function flatten(
  value: Record<string, unknown>,
  source: LayerValue['source'],
  prefix = '',
): Map<string, LayerValue> {
  const out = new Map<string, LayerValue>();
  for (const [key, child] of Object.entries(value)) {
    const full = prefix ? `${prefix}.${key}` : key;
    if (child !== null && typeof child === 'object' && !Array.isArray(child)) {
      flatten(child as Record<string, unknown>, source, full).forEach((v, k) => out.set(k, v));
    } else {
      out.set(full, { value: child, source, origin: full });
    }
  }
  return out;
}

function unflatten(flat: Map<string, LayerValue>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, { value }] of flat) {
    const parts = key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[parts.at(-1)!] = value;
  }
  return root;
}

function describeIssue(issue: z.core.$ZodIssue, merged: Map<string, LayerValue>): string {
  // A list item's issue points inside the list; the setting is the list itself.
  const keyParts = issue.path.filter((part) => typeof part === 'string');
  const key = keyParts.join('.');
  const given = merged.get(key);
  if (!given) return `${key}: ${issue.message}`;
  const shown = SECRET_KEYS.has(key) ? '[REDACTED]' : JSON.stringify(given.value);
  const where =
    given.source === 'env' || given.source === '.env'
      ? `${given.source} ${given.origin}`
      : given.source === 'override'
        ? 'override'
        : `${given.source} key ${given.origin}`;
  const envHint = ENV_BY_KEY[key] && !where.includes(ENV_BY_KEY[key]) ? `; variable ${ENV_BY_KEY[key]}` : '';
  return `${key} = ${shown} (from ${where}${envHint}): ${issue.message}`;
}

/** Every leaf key the schema knows, walking through zod's default/optional/preprocess wrappers. */
function collectLeafKeys(schema: z.ZodType, prefix = '', out = new Set<string>()): Set<string> {
  const shape = objectShape(schema);
  if (!shape) {
    out.add(prefix);
    return out;
  }
  for (const [key, child] of Object.entries(shape))
    collectLeafKeys(child, prefix ? `${prefix}.${key}` : key, out);
  return out;
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const def = (
    schema as unknown as {
      _zod: { def: { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType } };
    }
  )._zod.def;
  if (def.type === 'object') return def.shape;
  if ((def.type === 'default' || def.type === 'optional') && def.innerType) return objectShape(def.innerType);
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * The machine's environment (PATH, HOME, …) for launching child processes such as the embedded
 * database. Not configuration: settings are read only through loadConfig.
 */
export function machineEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
