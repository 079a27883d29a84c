// The layered configuration loader, on real files in temporary folders: which layer wins, how values are
// spelled, and what an operator reads when a value is refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig, type LoadConfigOptions } from '../../src/config/index.js';

const SECRET = 'loader-test-secret-0123456789-abcdefghijklmnop';
const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary project folder holding the given files (paths relative to it; objects written as JSON). */
function project(files: Record<string, string | object> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-config-test-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    const full = path.join(dir, name);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

function load(cwd: string, env: Record<string, string> = {}, options: LoadConfigOptions = {}) {
  return loadConfig({ env, cwd, ...options });
}

/** The problem lines of the ConfigError that loading must raise. */
function problems(cwd: string, env: Record<string, string> = {}): string[] {
  let caught: unknown;
  try {
    load(cwd, env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems;
}

/** The single problem line mentioning `key`. */
function problemFor(lines: string[], key: string): string {
  const matching = lines.filter((line) => line.startsWith(key));
  expect(matching, `one problem about ${key} in ${JSON.stringify(lines)}`).toHaveLength(1);
  return matching[0]!;
}

describe('defaults', () => {
  it('starts from the documented defaults when nothing is configured', () => {
    const { config, sources, files } = load(project());
    expect(config.server.port).toBe(8000);
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.server.debug).toBe(true);
    expect(config.logging.level).toBe('info');
    expect(config.files.max_file_size).toBe(10 * 1024 * 1024);
    expect(config.database.name).toBe('switchboard');
    expect(config.database.url).toBeUndefined();
    expect(sources['server.port']).toBe('default');
    expect(sources['logging.level']).toBe('default');
    expect(files).toEqual([]);
  });
});

describe('precedence: defaults < config.json < config.yaml < .env < environment', () => {
  // Every layer up to and including `top` sets PORT to its own value: the top one must win.
  const layers = ['json', 'yaml', '.env', 'env'] as const;
  const portOf = { json: 9001, yaml: 9002, '.env': 9003, env: 9004 } as const;

  function stackUpTo(top: (typeof layers)[number]) {
    const included = layers.slice(0, layers.indexOf(top) + 1);
    const files: Record<string, string | object> = {};
    const env: Record<string, string> = {};
    if (included.includes('json')) files['config/config.json'] = { server: { port: portOf.json } };
    if (included.includes('yaml')) files['config/config.yaml'] = `server:\n  port: ${portOf.yaml}\n`;
    if (included.includes('.env')) files['.env'] = `PORT=${portOf['.env']}\n`;
    if (included.includes('env')) env.PORT = String(portOf.env);
    return { cwd: project(files), env };
  }

  it.each(layers)('%s overrides every layer below it for the same key', (top) => {
    const { cwd, env } = stackUpTo(top);
    const { config, sources } = load(cwd, env);
    expect(config.server.port).toBe(portOf[top]);
    expect(sources['server.port']).toBe(top);
  });

  it('merges deeply: a higher layer replaces only the keys it sets, siblings from lower layers stay', () => {
    const cwd = project({
      'config/config.json': {
        server: { port: 9001, host: '0.0.0.0', timezone: '+05:30' },
        logging: { level: 'debug', retention: 3 },
      },
      'config/config.yaml': 'server:\n  port: 9002\nlogging:\n  retention: 7\n',
      '.env': 'PORT=9003\nLOG_LEVEL=warn\n',
    });
    const { config, sources } = load(cwd, { PORT: '9004' });
    expect(config.server).toMatchObject({ port: 9004, host: '0.0.0.0', timezone: '+05:30' });
    expect(config.logging).toMatchObject({ level: 'warn', retention: 7 });
    expect(sources).toMatchObject({
      'server.port': 'env',
      'server.host': 'json',
      'server.timezone': 'json',
      'logging.level': '.env',
      'logging.retention': 'yaml',
      'server.debug': 'default',
    });
  });

  it('replaces a list whole rather than merging its items', () => {
    const cwd = project({
      'config/config.json': { files: { allowed_extensions: ['png', 'pdf'] } },
      'config/config.yaml': 'files:\n  allowed_extensions: [txt]\n',
    });
    expect(load(cwd).config.files.allowed_extensions).toEqual(['txt']);
  });

  it('lets code overrides win over the environment', () => {
    const { config } = load(
      project({ '.env': 'PORT=9003\n' }),
      { PORT: '9004' },
      {
        overrides: { server: { port: 9005 } },
      },
    );
    expect(config.server.port).toBe(9005);
  });

  it('lists the files it read', () => {
    const cwd = project({
      'config/config.json': { server: { port: 9001 } },
      'config/config.yaml': 'server:\n  host: 0.0.0.0\n',
      '.env': 'LOG_LEVEL=warn\n',
    });
    expect(load(cwd).files.sort()).toEqual(
      [
        path.join(cwd, '.env'),
        path.join(cwd, 'config', 'config.json'),
        path.join(cwd, 'config', 'config.yaml'),
      ].sort(),
    );
  });
});

describe('CONFIG_DIR', () => {
  const files = {
    'config/config.yaml': 'server:\n  port: 9100\n',
    'settings/config.yaml': 'server:\n  port: 9200\n',
    'other/config.json': { server: { port: 9300 } },
  };

  it('reads the configuration files from CONFIG_DIR in the environment, relative to the project', () => {
    const cwd = project(files);
    const { config, files: read } = load(cwd, { CONFIG_DIR: 'settings' });
    expect(config.server.port).toBe(9200);
    expect(read).toEqual([path.join(cwd, 'settings', 'config.yaml')]);
  });

  it('accepts an absolute CONFIG_DIR', () => {
    const elsewhere = project({ 'config.yaml': 'server:\n  port: 9400\n' });
    expect(load(project(files), { CONFIG_DIR: elsewhere }).config.server.port).toBe(9400);
  });

  it('reads CONFIG_DIR from .env, without warning that it is unknown', () => {
    const cwd = project({ ...files, '.env': 'CONFIG_DIR=settings\n' });
    const { config, warnings } = load(cwd);
    expect(config.server.port).toBe(9200);
    expect(warnings.filter((w) => w.includes('CONFIG_DIR'))).toEqual([]);
  });

  it('prefers CONFIG_DIR from the environment over the one in .env', () => {
    const cwd = project({ ...files, '.env': 'CONFIG_DIR=settings\n' });
    expect(load(cwd, { CONFIG_DIR: 'other' }).config.server.port).toBe(9300);
  });
});

describe('file keys mirror the environment names', () => {
  // The same settings written as nested YAML keys and as environment variables give the same config.
  const yaml = [
    'server:',
    '  port: 9001',
    '  debug: false',
    '  cors_origins: [https://chat.example.com, "http://localhost:5173"]',
    'database:',
    '  url: mongodb://db.internal:27017',
    '  name: chat_prod',
    'files:',
    '  max_file_size: 10MB',
    '  allowed_extensions: [png, pdf]',
    'logging:',
    '  level: warn',
    'auth:',
    `  secret_key: ${SECRET}`,
    '  session_timeout_s: 7200',
    '',
  ].join('\n');
  const env = {
    PORT: '9001',
    DEBUG: 'false',
    CORS_ORIGINS: 'https://chat.example.com,http://localhost:5173',
    MONGO_URL: 'mongodb://db.internal:27017',
    DB_NAME: 'chat_prod',
    MAX_FILE_SIZE: '10MB',
    ALLOWED_EXTENSIONS: 'png,pdf',
    LOG_LEVEL: 'warn',
    SECRET_KEY: SECRET,
    SESSION_TIMEOUT: '7200',
  };

  it('gives the same configuration from config.yaml, from .env and from the environment', () => {
    const fromYaml = load(project({ 'config/config.yaml': yaml }));
    const fromDotenv = load(
      project({
        '.env': Object.entries(env)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n'),
      }),
    );
    const fromEnv = load(project(), env);
    expect(fromYaml.config).toEqual(fromEnv.config);
    expect(fromDotenv.config).toEqual(fromEnv.config);
    expect(fromEnv.config.server.port).toBe(9001);
    expect(fromEnv.config.database.url).toBe('mongodb://db.internal:27017');
    expect(fromYaml.sources['server.port']).toBe('yaml');
    expect(fromDotenv.sources['server.port']).toBe('.env');
    expect(fromEnv.sources['server.port']).toBe('env');
  });
});

describe('type coercion', () => {
  it.each(['true', 'TRUE', '1', 'yes', 'Yes', 'on', ' on '])('reads %j as true', (spelling) => {
    expect(load(project(), { TRUST_PROXY: spelling }).config.server.trust_proxy).toBe(true);
  });

  it.each(['false', 'False', '0', 'no', 'off', 'OFF'])('reads %j as false', (spelling) => {
    expect(load(project(), { RATE_LIMITING_ENABLED: spelling }).config.rate_limit.enabled).toBe(false);
  });

  it('takes YAML and JSON booleans as they are', () => {
    const cwd = project({
      'config/config.json': { server: { behind_tls: true } },
      'config/config.yaml': 'rate_limit:\n  enabled: false\n',
    });
    const { config } = load(cwd);
    expect(config.server.behind_tls).toBe(true);
    expect(config.rate_limit.enabled).toBe(false);
  });

  it('reads whole numbers from strings, with surrounding spaces, and from files as numbers', () => {
    const { config } = load(project({ 'config/config.yaml': 'auth:\n  max_login_attempts: 9\n' }), {
      PORT: ' 8080 ',
      MESSAGES_PER_MINUTE: '120',
    });
    expect(config.server.port).toBe(8080);
    expect(config.rate_limit.messages_per_minute).toBe(120);
    expect(config.auth.max_login_attempts).toBe(9);
  });

  it('reads fractional numbers where a setting allows them', () => {
    expect(load(project(), { HEALTH_CHECK_INTERVAL: '0.5' }).config.monitoring.health_check_interval_s).toBe(
      0.5,
    );
  });

  it.each([
    ['10MB', 10 * 1024 ** 2],
    ['10mb', 10 * 1024 ** 2],
    ['512k', 512 * 1024],
    ['512KB', 512 * 1024],
    ['1g', 1024 ** 3],
    ['2 MB', 2 * 1024 ** 2],
    ['2048', 2048],
    ['100b', 100],
  ])('reads the size %j as %i bytes', (spelling, bytes) => {
    expect(load(project(), { MAX_FILE_SIZE: spelling }).config.files.max_file_size).toBe(bytes);
  });

  it('reads a size written as a number in a file', () => {
    const cwd = project({ 'config/config.json': { files: { max_file_size: 4096 } } });
    expect(load(cwd).config.files.max_file_size).toBe(4096);
  });

  it('reads comma-separated lists, trimming entries and dropping empty ones', () => {
    const { config } = load(project(), {
      ALLOWED_EXTENSIONS: ' png, .PDF ,,txt ',
      CORS_ORIGINS: 'https://chat.example.com, http://localhost:5173',
    });
    expect(config.files.allowed_extensions).toEqual(['png', 'pdf', 'txt']);
    expect(config.server.cors_origins).toEqual(['https://chat.example.com', 'http://localhost:5173']);
  });

  it('reads lists written as YAML sequences', () => {
    const cwd = project({ 'config/config.yaml': 'files:\n  allowed_extensions:\n    - PNG\n    - .md\n' });
    expect(load(cwd).config.files.allowed_extensions).toEqual(['png', 'md']);
  });

  it('treats an empty MONGO_URL as not set', () => {
    const { config } = load(project(), { MONGO_URL: '' });
    expect(config.database.url).toBeUndefined();
  });
});

describe('refused values name the key, where it came from and what is expected', () => {
  it('a non-numeric whole number (environment)', () => {
    const line = problemFor(problems(project(), { PORT: 'abc' }), 'server.port');
    expect(line).toContain('"abc"');
    expect(line).toContain('env PORT');
    expect(line).toContain('expected a whole number');
  });

  it('a fractional whole number (config.yaml), with the variable that also sets it', () => {
    const cwd = project({ 'config/config.yaml': 'server:\n  port: 80.5\n' });
    const line = problemFor(problems(cwd), 'server.port');
    expect(line).toContain('yaml key server.port');
    expect(line).toContain('variable PORT');
    expect(line).toContain('expected a whole number');
  });

  it('a number above the range (.env)', () => {
    const line = problemFor(problems(project({ '.env': 'PORT=70000\n' })), 'server.port');
    expect(line).toContain('"70000"');
    expect(line).toContain('.env PORT');
    expect(line).toContain('expected at most 65535');
  });

  it('a number below the range (config.json)', () => {
    const cwd = project({ 'config/config.json': { auth: { session_timeout_s: 10 } } });
    const line = problemFor(problems(cwd), 'auth.session_timeout_s');
    expect(line).toContain('10');
    expect(line).toContain('json key auth.session_timeout_s');
    expect(line).toContain('variable SESSION_TIMEOUT');
    expect(line).toContain('expected at least 60');
  });

  it('a boolean that is neither true nor false (environment)', () => {
    const line = problemFor(problems(project(), { DEBUG: 'maybe' }), 'server.debug');
    expect(line).toContain('"maybe"');
    expect(line).toContain('env DEBUG');
    expect(line).toContain('expected true or false');
  });

  it('a boolean that is neither true nor false (config.yaml)', () => {
    const cwd = project({ 'config/config.yaml': 'rate_limit:\n  enabled: sometimes\n' });
    const line = problemFor(problems(cwd), 'rate_limit.enabled');
    expect(line).toContain('yaml key rate_limit.enabled');
    expect(line).toContain('variable RATE_LIMITING_ENABLED');
    expect(line).toContain('expected true or false');
  });

  it('a log level that does not exist (environment)', () => {
    const line = problemFor(problems(project(), { LOG_LEVEL: 'loud' }), 'logging.level');
    expect(line).toContain('"loud"');
    expect(line).toContain('env LOG_LEVEL');
    expect(line).toContain('expected fatal, error, warn, info, debug, trace or silent');
  });

  it('a log level that does not exist (config.json)', () => {
    const cwd = project({ 'config/config.json': { logging: { level: 'verbose' } } });
    const line = problemFor(problems(cwd), 'logging.level');
    expect(line).toContain('json key logging.level');
    expect(line).toContain('variable LOG_LEVEL');
    expect(line).toContain('expected fatal, error, warn, info, debug, trace or silent');
  });

  it('a database URL with the wrong scheme, without echoing its credentials', () => {
    const line = problemFor(
      problems(project(), { MONGO_URL: 'http://admin:hunter2-db-pass@db.internal:27017' }),
      'database.url',
    );
    expect(line).toContain('env MONGO_URL');
    expect(line).toContain('expected a URL starting with mongodb:// or mongodb+srv://');
    expect(line).not.toContain('hunter2-db-pass');
  });

  it('a database URL that is not a URL (.env)', () => {
    const line = problemFor(problems(project({ '.env': 'MONGO_URL=localhost:27017\n' })), 'database.url');
    expect(line).toContain('.env MONGO_URL');
    expect(line).toContain('mongodb://');
  });

  it.each([
    'https://chat.example.com/app',
    'chat.example.com',
    'https://chat.example.com?x=1',
    'ftp:/broken',
  ])('a CORS origin that is not an origin: %j', (bad) => {
    const line = problemFor(
      problems(project(), { CORS_ORIGINS: `https://ok.example.com,${bad}` }),
      'server.cors_origins',
    );
    expect(line).toContain('env CORS_ORIGINS');
    expect(line).toContain('expected an origin such as https://chat.example.com');
  });

  it('a CORS origin that is not an origin in config.yaml', () => {
    const cwd = project({
      'config/config.yaml': 'server:\n  cors_origins: ["https://ok.example.com", "/app"]\n',
    });
    const line = problemFor(problems(cwd), 'server.cors_origins');
    expect(line).toContain('yaml key server.cors_origins');
    expect(line).toContain('variable CORS_ORIGINS');
    expect(line).toContain('expected an origin');
  });

  it.each(['ex e', 'tar.gz', 'averyverylongext', 'p*g'])('an extension that is not one: %j', (bad) => {
    const line = problemFor(
      problems(project(), { ALLOWED_EXTENSIONS: `png,${bad}` }),
      'files.allowed_extensions',
    );
    expect(line).toContain('env ALLOWED_EXTENSIONS');
    expect(line).toContain('expected extensions such as png,pdf,txt');
  });

  it.each(['1.5MB', '10XB', 'lots', '0'])('a size that is not one: %j', (bad) => {
    const line = problemFor(problems(project(), { MAX_FILE_SIZE: bad }), 'files.max_file_size');
    expect(line).toContain('env MAX_FILE_SIZE');
    expect(line).toMatch(/expected (a size in bytes such as 10485760, 512k or 10MB|at least 1 bytes)/);
  });

  it('a list given as a number in config.yaml', () => {
    const cwd = project({ 'config/config.yaml': 'files:\n  allowed_extensions: 7\n' });
    const line = problemFor(problems(cwd), 'files.allowed_extensions');
    expect(line).toContain('yaml key files.allowed_extensions');
    expect(line).toContain('expected a list');
  });

  it('a config.json that is not valid JSON names the file', () => {
    const cwd = project({ 'config/config.json': '{ "server": { "port": 9001, } }' });
    const lines = problems(cwd);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path.join(cwd, 'config', 'config.json'));
    expect(lines[0]).toContain('not valid JSON');
  });

  it('a config.yaml that is not valid YAML names the file and the line', () => {
    const cwd = project({ 'config/config.yaml': 'server:\n  port: 9001\n host: x\n' });
    const lines = problems(cwd);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path.join(cwd, 'config', 'config.yaml'));
    expect(lines[0]).toContain('not valid YAML');
    expect(lines[0]).toMatch(/line \d+/);
  });

  it.each([
    ['config/config.yaml', '- server\n- port\n'],
    ['config/config.yaml', 'just a sentence\n'],
    ['config/config.json', '[1, 2]'],
    ['config/config.json', '"port"'],
  ])('a %s whose top level is not a mapping (%j)', (file, content) => {
    const cwd = project({ [file]: content });
    const lines = problems(cwd);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path.join(cwd, file));
    expect(lines[0]).toContain('expected a mapping of settings at the top level');
  });

  it('an empty config.yaml is not a problem', () => {
    const cwd = project({ 'config/config.yaml': '# nothing yet\n' });
    expect(load(cwd).config.server.port).toBe(8000);
  });

  it('reports every problem at once, one line each, from every layer', () => {
    const cwd = project({
      'config/config.json': '{ not json',
      'config/config.yaml': 'server:\n  debug: perhaps\n',
      '.env': 'LOG_LEVEL=loud\n',
    });
    let caught: unknown;
    try {
      load(cwd, { PORT: 'abc', MONGO_URL: 'http://db' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const lines = (caught as ConfigError).problems;
    expect(lines).toHaveLength(5);
    expect(lines.some((l) => l.includes('config.json') && l.includes('not valid JSON'))).toBe(true);
    expect(problemFor(lines, 'server.debug')).toContain('yaml key server.debug');
    expect(problemFor(lines, 'logging.level')).toContain('.env LOG_LEVEL');
    expect(problemFor(lines, 'server.port')).toContain('env PORT');
    expect(problemFor(lines, 'database.url')).toContain('env MONGO_URL');
    // The error's message carries every line too, for whoever logs only the message.
    for (const line of lines) expect((caught as ConfigError).message).toContain(line);
  });
});

describe('unknown keys', () => {
  it('warns about unknown keys in config.json and ignores them', () => {
    const cwd = project({
      'config/config.json': { server: { prot: 'not even a number', port: 9001 }, colour: 'red' },
    });
    const file = path.join(cwd, 'config', 'config.json');
    const { config, warnings } = load(cwd);
    expect(config.server.port).toBe(9001);
    expect(config).not.toHaveProperty('colour');
    expect(config.server).not.toHaveProperty('prot');
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/"server\.prot".*config\.json/),
        expect.stringMatching(/"colour".*config\.json/),
      ]),
    );
    expect(warnings).toContainEqual(expect.stringContaining(`"server.prot" in ${file}`));
  });

  it('warns about unknown keys in config.yaml and ignores them', () => {
    const cwd = project({ 'config/config.yaml': 'logging:\n  levle: debug\n  level: warn\n' });
    const { config, warnings } = load(cwd);
    expect(config.logging.level).toBe('warn');
    expect(config.logging).not.toHaveProperty('levle');
    expect(warnings).toContainEqual(
      expect.stringContaining(`"logging.levle" in ${path.join(cwd, 'config', 'config.yaml')}`),
    );
  });

  it('warns about unknown names in .env and ignores them', () => {
    const { config, warnings } = load(project({ '.env': 'PROT=1234\nPORT=9001\n' }));
    expect(config.server.port).toBe(9001);
    expect(warnings).toContainEqual(expect.stringMatching(/"PROT" in \.env/));
  });

  it('does not warn about the many unrelated variables of the process environment', () => {
    const { warnings } = load(project(), { PATH: '/usr/bin', HOME: '/root', PROT: '1', SECRET_KEY: SECRET });
    expect(warnings).toEqual([]);
  });
});

describe('sources', () => {
  it('records the layer each value came from', () => {
    const cwd = project({
      'config/config.json': { database: { name: 'from_json' } },
      'config/config.yaml': 'logging:\n  retention: 3\n',
      '.env': 'MAX_FILE_SIZE=1MB\n',
    });
    const { sources } = load(cwd, { PORT: '9001' });
    expect(sources).toMatchObject({
      'database.name': 'json',
      'logging.retention': 'yaml',
      'files.max_file_size': '.env',
      'server.port': 'env',
      'server.host': 'default',
      'auth.secret_key': 'generated',
    });
  });

  it('has an entry for every setting', () => {
    const { sources, config } = load(project());
    for (const [group, values] of Object.entries(config)) {
      for (const key of Object.keys(values as object)) expect(sources).toHaveProperty([`${group}.${key}`]);
    }
  });
});

describe('the loaded configuration is read-only', () => {
  it('throws on any attempt to change a value, a list or the sources', () => {
    const { config, sources } = load(project(), { SECRET_KEY: SECRET });
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.auth as { secret_key?: string }).secret_key = 'stolen';
    }).toThrow(TypeError);
    expect(() => {
      (config.files.allowed_extensions as string[]).push('exe');
    }).toThrow(TypeError);
    expect(() => {
      (config as unknown as Record<string, unknown>).server = {};
    }).toThrow(TypeError);
    expect(() => {
      (sources as Record<string, string>)['server.port'] = 'env';
    }).toThrow(TypeError);
    expect(config.server.port).toBe(8000);
    expect(config.auth.secret_key).toBe(SECRET);
    expect(config.files.allowed_extensions).not.toContain('exe');
  });
});

describe('redactConfig', () => {
  it('masks every secret and keeps everything else', () => {
    const { config } = load(project(), {
      SECRET_KEY: SECRET,
      MONGO_URL: 'mongodb://app:db-password-123@db.internal:27017/chat',
      ADMIN_PASSWORD: 'admin-password-456',
      REDIS_URL: 'redis://:redis-password-789@cache:6379',
      ATTENDANCE_DB_URL: 'postgres://hr:attendance-pass@hr/db',
      PORT: '9001',
    });
    const redacted = redactConfig(config) as {
      auth: Record<string, unknown>;
      database: Record<string, unknown>;
      redis: Record<string, unknown>;
      integrations: Record<string, unknown>;
      server: Record<string, unknown>;
    };
    expect(redacted.auth.secret_key).toBe('[REDACTED]');
    expect(redacted.auth.admin_password).toBe('[REDACTED]');
    expect(redacted.database.url).toBe('[REDACTED]');
    expect(redacted.redis.url).toBe('[REDACTED]');
    expect(redacted.integrations.attendance_db_url).toBe('[REDACTED]');
    expect(redacted.server.port).toBe(9001);
    expect(redacted.database.name).toBe('switchboard');
    const text = JSON.stringify(redacted);
    for (const secret of [
      SECRET,
      'db-password-123',
      'admin-password-456',
      'redis-password-789',
      'attendance-pass',
    ])
      expect(text).not.toContain(secret);
    // The live configuration is untouched.
    expect(config.auth.secret_key).toBe(SECRET);
    expect(config.database.url).toBe('mongodb://app:db-password-123@db.internal:27017/chat');
  });

  it('does not invent a value for a secret that is not set', () => {
    const { config } = load(project(), { SECRET_KEY: SECRET });
    const redacted = redactConfig(config) as { database: Record<string, unknown> };
    expect(redacted.database.url).toBeUndefined();
  });
});
