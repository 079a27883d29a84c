// The shape of Switchboard's configuration: one zod schema with every default, and the table that maps
// environment variables (the original system's names first) onto its nested keys.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Accepts a boolean or the usual spellings of one in environment variables. */
const bool = () =>
  z.preprocess(
    (value) => {
      if (typeof value !== 'string') return value;
      const v = value.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return value;
    },
    z.boolean({ error: 'expected true or false' }),
  );

/** A whole number, from a number or a numeric string. */
const int = (min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value),
    z
      .number({ error: 'expected a whole number' })
      .int({ error: 'expected a whole number' })
      .min(min, { error: `expected at least ${min}` })
      .max(max, { error: `expected at most ${max}` }),
  );

/** A number (fractions allowed), from a number or a numeric string. */
const num = (min: number, max: number) =>
  z.preprocess(
    (value) =>
      typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))
        ? Number(value)
        : value,
    z
      .number({ error: 'expected a number' })
      .min(min, { error: `expected at least ${min}` })
      .max(max, { error: `expected at most ${max}` }),
  );

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};

/** A size in bytes: a number, or a string such as "10485760", "512k" or "10MB". */
const bytes = (min: number) =>
  z.preprocess(
    (value) => {
      if (typeof value !== 'string') return value;
      const match = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(value);
      const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
      return match && unit ? Number(match[1]) * unit : value;
    },
    z
      .number({ error: 'expected a size in bytes such as 10485760, 512k or 10MB' })
      .int({ error: 'expected a whole number of bytes' })
      .min(min, { error: `expected at least ${min} bytes` }),
  );

/** A list, from an array or a comma-separated string; entries trimmed, empty ones dropped. */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter(Boolean)
        : value,
    z.array(item, { error: 'expected a list (YAML/JSON array or comma-separated string)' }),
  );

/** An optional string; blank counts as unset (so `SECRET_KEY=   ` is not a secret). */
const optionalString = () =>
  z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    z.string().optional(),
  );

const url = (protocols: string[]) =>
  z.preprocess(
    (value) => (value === '' ? undefined : value),
    z
      .string()
      .refine(
        (value) => {
          try {
            return protocols.includes(new URL(value).protocol);
          } catch {
            return false;
          }
        },
        { error: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
      )
      .optional(),
  );

const origin = z.string().refine(
  (value) => {
    if (value === '*') return true;
    try {
      const parsed = new URL(value);
      return parsed.origin === value.replace(/\/$/, '');
    } catch {
      return false;
    }
  },
  { error: 'expected an origin such as https://chat.example.com (scheme, host and optional port)' },
);

export const configSchema = z.object({
  server: z.object({
    host: z.string().min(1).default('127.0.0.1'),
    port: int(0, 65535).default(8000),
    debug: bool().default(true),
    timezone: z
      .string()
      .regex(/^(Z|UTC|[+-](0\d|1[0-4]):[0-5]\d)$/, { error: 'expected Z, UTC or an offset such as +05:30' })
      .default('Z'),
    trust_proxy: bool().default(false),
    behind_tls: bool().default(false),
    cors_origins: list(origin).default([]),
    body_limit: bytes(1024).default(1024 * 1024),
    request_timeout_ms: int(0, 600_000).default(30_000),
    shutdown_timeout_ms: int(100, 600_000).default(10_000),
    max_event_loop_delay_ms: int(0, 60_000).default(1_000),
    not_found_per_minute: int(1, 1_000_000).default(120),
  }),
  ws: z.object({
    host: optionalString(),
    port: int(0, 65535).optional(),
    max_connections: int(1, 1_000_000).default(10_000),
    max_per_user: int(1, 1000).default(10),
    max_frame_bytes: bytes(256).default(64 * 1024),
    max_buffered_bytes: bytes(16 * 1024).default(1024 * 1024),
    heartbeat_ms: int(1000, 600_000).default(30_000),
    presence_grace_ms: int(0, 600_000).default(5000),
    status_flush_ms: int(10, 10_000).default(250),
    typing_throttle_ms: int(0, 60_000).default(2000),
    resume_limit: int(1, 1000).default(200),
    poll_buffer: int(10, 100_000).default(1000),
    connection_work_concurrency: int(1, 1000).default(2),
  }),
  auth: z.object({
    secret_key: optionalString(),
    session_timeout_s: int(60, 31_536_000).default(3600),
    max_login_attempts: int(1, 1000).default(5),
    access_token_ttl_s: int(30, 86_400).default(900),
    session_max_age_s: int(300, 31_536_000).default(30 * 86_400),
    password_min_length: int(8, 256).default(12),
    lockout_base_s: int(1, 86_400).default(60),
    lockout_max_s: int(1, 86_400).default(3600),
    ip_max_login_failures: int(1, 1_000_000).default(100),
    login_failure_window_s: int(10, 86_400).default(900),
    set_password_token_ttl_s: int(300, 31_536_000).default(7 * 86_400),
    admin_email: optionalString(),
    admin_password: optionalString(),
  }),
  database: z.object({
    url: url(['mongodb:', 'mongodb+srv:']),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,63}$/, { error: 'expected 1-63 letters, digits, _ or -' })
      .default('switchboard'),
    embedded: z
      .enum(['auto', 'mongod', 'ferretdb'], { error: 'expected auto, mongod or ferretdb' })
      .default('auto'),
    data_dir: z.string().min(1).default('data'),
    cache_dir: z
      .string()
      .min(1)
      .default(path.join(os.homedir(), '.cache', 'switchboard')),
    pool_size: int(1, 1000).default(20),
    timeout_ms: int(100, 120_000).default(5_000),
  }),
  files: z.object({
    max_file_size: bytes(1).default(10 * 1024 * 1024),
    allowed_extensions: list(
      z
        .string()
        .transform((ext) => ext.toLowerCase().replace(/^\./, ''))
        .pipe(z.string().regex(/^[a-z0-9]{1,10}$/, { error: 'expected extensions such as png,pdf,txt' })),
    ).default([
      'jpg',
      'jpeg',
      'png',
      'gif',
      'webp',
      'pdf',
      'txt',
      'md',
      'csv',
      'doc',
      'docx',
      'xls',
      'xlsx',
      'ppt',
      'pptx',
      'zip',
    ]),
    upload_path: z.string().min(1).default('uploads'),
    /** Bytes one user may keep stored (their files not deleted). */
    user_quota: bytes(1).default(1024 ** 3),
    /** Lifetime of the signed links in file_url (rounded up to the hour so links stay cacheable). */
    link_ttl_s: int(60, 31_536_000).default(86_400),
    /** Uploads never attached to a message are removed after this long. */
    orphan_ttl_s: int(60, 31_536_000).default(86_400),
    /** HTML, SVG and JavaScript uploads (when their extension is allowed); served only as attachments. */
    allow_active_content: bool().default(false),
  }),
  logging: z.object({
    level: z
      .preprocess(
        (value) => (typeof value === 'string' ? value.trim().toLowerCase() : value),
        z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
          error: 'expected fatal, error, warn, info, debug, trace or silent',
        }),
      )
      .default('info'),
    dir: z.string().min(1).default('logs'),
    max_size: z
      .string()
      .regex(/^\d+[kmg]$/i, { error: 'expected a size such as 512k, 10m or 1g' })
      .default('10m'),
    frequency: z.enum(['daily', 'hourly'], { error: 'expected daily or hourly' }).default('daily'),
    retention: int(1, 1000).default(14),
    console: z
      .enum(['auto', 'pretty', 'json', 'off'], { error: 'expected auto, pretty, json or off' })
      .default('auto'),
  }),
  messages: z.object({
    max_length: int(1, 100_000).default(10_000),
    edit_window_s: int(0, 31_536_000).default(900),
    edit_history_limit: int(0, 1000).default(20),
    max_reactions: int(1, 1000).default(50),
  }),
  announcements: z.object({
    check_interval_s: num(0.05, 3600).default(5),
  }),
  rate_limit: z.object({
    enabled: bool().default(true),
    messages_per_minute: int(1, 1_000_000).default(60),
    file_uploads_per_hour: int(1, 1_000_000).default(30),
    /** Requests per minute per principal (the user when signed in, else the address), every route. */
    requests_per_minute: int(1, 10_000_000).default(1200),
    /**
     * Login and token refresh attempts per minute per address. Generous: an office logs in from one
     * address at 9 o'clock; guessing is stopped by the per-account lockout and IP_MAX_LOGIN_FAILURES.
     */
    login_per_minute: int(1, 1_000_000).default(120),
  }),
  security: z
    .object({
      /** The detection plugin: scores every request and frame, records, alerts and bans. */
      enabled: bool().default(true),
      /** A principal's score at which its events are recorded, admins alerted, and it is banned. */
      observe_score: num(0.1, 100_000).default(10),
      alert_score: num(0.1, 100_000).default(25),
      block_score: num(0.1, 100_000).default(35),
      /** Content rules matched by one message before it is recorded (content never blocks). */
      content_observe_score: int(1, 100).default(3),
      /** Scores halve every this many seconds. */
      score_half_life_s: int(1, 86_400).default(300),
      /** First ban length; each further ban within the offense memory doubles it, up to the maximum. */
      ban_base_s: int(1, 30 * 86_400).default(300),
      ban_max_s: int(1, 365 * 86_400).default(86_400),
      offense_memory_s: int(60, 365 * 86_400).default(86_400),
      /** Principals whose scores are kept in memory (least recently seen evicted first). */
      max_principals: int(100, 10_000_000).default(100_000),
      /** Security events are kept this long. */
      events_retention_days: int(1, 3650).default(90),
    })
    .refine((value) => value.observe_score < value.alert_score && value.alert_score < value.block_score, {
      error: 'expected observe_score < alert_score < block_score',
    }),
  monitoring: z.object({
    enabled: bool().default(true),
    metrics_enabled: bool().default(true),
    /** When set, GET /metrics needs `Authorization: Bearer <this>` (Prometheus: `authorization` in the scrape config). */
    metrics_token: optionalString(),
    /** Ops alerts (0 turns one off): server errors per minute, event-loop delay p99, database ping. */
    alert_error_rate_per_min: int(0, 1_000_000).default(30),
    alert_event_loop_delay_ms: int(0, 600_000).default(250),
    alert_db_latency_ms: int(0, 600_000).default(500),
    /** Day buckets of the analytics are kept this long (minutes 2 days, hours 30 days). */
    analytics_retention_days: int(1, 3650).default(90),
    health_check_interval_s: num(0.05, 3600).default(10),
  }),
  redis: z.object({
    url: url(['redis:', 'rediss:']),
  }),
  integrations: z.object({
    // Accepted for compatibility with the original deployment's environment; this server does not use it.
    attendance_db_url: optionalString(),
  }),
});

export type Config = z.output<typeof configSchema>;

/**
 * Environment variables (and .env keys) and the nested key each one sets. The original system's names
 * come first and keep their meaning; the rest are Switchboard's own.
 */
export const ENV_KEYS: Readonly<Record<string, string>> = {
  MONGO_URL: 'database.url',
  DB_NAME: 'database.name',
  SECRET_KEY: 'auth.secret_key',
  SESSION_TIMEOUT: 'auth.session_timeout_s',
  MAX_LOGIN_ATTEMPTS: 'auth.max_login_attempts',
  HOST: 'server.host',
  PORT: 'server.port',
  DEBUG: 'server.debug',
  WS_HOST: 'ws.host',
  WS_PORT: 'ws.port',
  WS_MAX_CONNECTIONS: 'ws.max_connections',
  MAX_FILE_SIZE: 'files.max_file_size',
  ALLOWED_EXTENSIONS: 'files.allowed_extensions',
  UPLOAD_PATH: 'files.upload_path',
  LOG_LEVEL: 'logging.level',
  LOG_DIR: 'logging.dir',
  RATE_LIMITING_ENABLED: 'rate_limit.enabled',
  MESSAGES_PER_MINUTE: 'rate_limit.messages_per_minute',
  FILE_UPLOADS_PER_HOUR: 'rate_limit.file_uploads_per_hour',
  MONITORING_ENABLED: 'monitoring.enabled',
  METRICS_ENABLED: 'monitoring.metrics_enabled',
  HEALTH_CHECK_INTERVAL: 'monitoring.health_check_interval_s',
  METRICS_TOKEN: 'monitoring.metrics_token',
  ALERT_ERROR_RATE: 'monitoring.alert_error_rate_per_min',
  ALERT_EVENT_LOOP_MS: 'monitoring.alert_event_loop_delay_ms',
  ALERT_DB_LATENCY_MS: 'monitoring.alert_db_latency_ms',
  ANALYTICS_RETENTION_DAYS: 'monitoring.analytics_retention_days',
  ATTENDANCE_DB_URL: 'integrations.attendance_db_url',
  // Switchboard's own.
  DATA_DIR: 'database.data_dir',
  CACHE_DIR: 'database.cache_dir',
  EMBEDDED_DB: 'database.embedded',
  DB_POOL_SIZE: 'database.pool_size',
  DB_TIMEOUT_MS: 'database.timeout_ms',
  CORS_ORIGINS: 'server.cors_origins',
  TIMEZONE: 'server.timezone',
  TRUST_PROXY: 'server.trust_proxy',
  BEHIND_TLS: 'server.behind_tls',
  BODY_LIMIT: 'server.body_limit',
  REQUEST_TIMEOUT_MS: 'server.request_timeout_ms',
  SHUTDOWN_TIMEOUT_MS: 'server.shutdown_timeout_ms',
  MAX_EVENT_LOOP_DELAY_MS: 'server.max_event_loop_delay_ms',
  NOT_FOUND_PER_MINUTE: 'server.not_found_per_minute',
  REDIS_URL: 'redis.url',
  ACCESS_TOKEN_TTL: 'auth.access_token_ttl_s',
  SESSION_MAX_AGE: 'auth.session_max_age_s',
  PASSWORD_MIN_LENGTH: 'auth.password_min_length',
  LOCKOUT_BASE_SECONDS: 'auth.lockout_base_s',
  LOCKOUT_MAX_SECONDS: 'auth.lockout_max_s',
  IP_MAX_LOGIN_FAILURES: 'auth.ip_max_login_failures',
  LOGIN_FAILURE_WINDOW: 'auth.login_failure_window_s',
  SET_PASSWORD_TOKEN_TTL: 'auth.set_password_token_ttl_s',
  ADMIN_EMAIL: 'auth.admin_email',
  ADMIN_PASSWORD: 'auth.admin_password',
  LOG_MAX_SIZE: 'logging.max_size',
  LOG_FREQUENCY: 'logging.frequency',
  LOG_RETENTION: 'logging.retention',
  LOG_CONSOLE: 'logging.console',
  MESSAGE_MAX_LENGTH: 'messages.max_length',
  MESSAGE_EDIT_WINDOW: 'messages.edit_window_s',
  MESSAGE_EDIT_HISTORY: 'messages.edit_history_limit',
  MESSAGE_MAX_REACTIONS: 'messages.max_reactions',
  ANNOUNCEMENT_CHECK_INTERVAL: 'announcements.check_interval_s',
  WS_MAX_PER_USER: 'ws.max_per_user',
  WS_MAX_FRAME: 'ws.max_frame_bytes',
  WS_MAX_BUFFERED: 'ws.max_buffered_bytes',
  WS_HEARTBEAT_MS: 'ws.heartbeat_ms',
  WS_PRESENCE_GRACE_MS: 'ws.presence_grace_ms',
  WS_STATUS_FLUSH_MS: 'ws.status_flush_ms',
  WS_TYPING_THROTTLE_MS: 'ws.typing_throttle_ms',
  WS_RESUME_LIMIT: 'ws.resume_limit',
  WS_POLL_BUFFER: 'ws.poll_buffer',
  WS_CONNECTION_WORK: 'ws.connection_work_concurrency',
  USER_STORAGE_QUOTA: 'files.user_quota',
  FILE_LINK_TTL: 'files.link_ttl_s',
  FILE_ORPHAN_TTL: 'files.orphan_ttl_s',
  ALLOW_ACTIVE_CONTENT: 'files.allow_active_content',
  RATE_LIMIT_PER_MINUTE: 'rate_limit.requests_per_minute',
  LOGIN_RATE_LIMIT: 'rate_limit.login_per_minute',
  DETECTION_ENABLED: 'security.enabled',
  SECURITY_OBSERVE_SCORE: 'security.observe_score',
  SECURITY_ALERT_SCORE: 'security.alert_score',
  SECURITY_BLOCK_SCORE: 'security.block_score',
  SECURITY_CONTENT_OBSERVE: 'security.content_observe_score',
  SECURITY_SCORE_HALF_LIFE: 'security.score_half_life_s',
  SECURITY_BAN_SECONDS: 'security.ban_base_s',
  SECURITY_BAN_MAX_SECONDS: 'security.ban_max_s',
  SECURITY_OFFENSE_MEMORY: 'security.offense_memory_s',
  SECURITY_MAX_PRINCIPALS: 'security.max_principals',
  SECURITY_EVENTS_RETENTION_DAYS: 'security.events_retention_days',
};

/** Keys whose values never appear in logs, errors or the admin config view. */
export const SECRET_KEYS = new Set([
  'auth.secret_key',
  'auth.admin_password',
  'database.url',
  'redis.url',
  'integrations.attendance_db_url',
  'monitoring.metrics_token',
]);

/** Values that ship in examples and tutorials: never acceptable as a production secret. */
export const KNOWN_PLACEHOLDER_SECRETS = new Set([
  'your-secret-key-here',
  'your-secret-key',
  'secret',
  'changeme',
  'change-me',
  'replace-with-at-least-32-random-characters',
]);

export const MIN_SECRET_LENGTH = 32;
