// The secret guard: with DEBUG=false the server refuses to start without a real SECRET_KEY; in development
// it makes up a random one per process. Whatever happens, the secret itself is never echoed back.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { KNOWN_PLACEHOLDER_SECRETS, MIN_SECRET_LENGTH } from '../../src/config/schema.js';

const GOOD_SECRET = 'q7R2v9XkLm3Pz8Wn4Tb6Yc1Hd5Fg0Js2';
const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function project(files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-secret-test-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    const full = path.join(dir, name);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, content);
  }
  return dir;
}

function refusal(env: Record<string, string>, cwd = project()): ConfigError {
  let caught: unknown;
  try {
    loadConfig({ env, cwd });
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return caught as ConfigError;
}

/** No run of 8 or more characters of `secret` appears in `text` (a fragment is a leak too). */
function expectNoPieceOf(secret: string, text: string): void {
  for (let i = 0; i + 8 <= secret.length; i++) expect(text).not.toContain(secret.slice(i, i + 8));
}

describe('with DEBUG=false', () => {
  it('refuses to start without SECRET_KEY, saying what to set', () => {
    const { problems } = refusal({ DEBUG: 'false' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('auth.secret_key');
    expect(problems[0]).toContain('SECRET_KEY is required when DEBUG=false');
    expect(problems[0]).toContain('32');
  });

  it.each(['0', 'no', 'off', 'FALSE'])('also refuses when DEBUG is spelled %j', (spelling) => {
    expect(refusal({ DEBUG: spelling }).problems[0]).toContain('SECRET_KEY is required');
  });

  it('refuses when DEBUG=false comes from .env or config.yaml', () => {
    expect(refusal({}, project({ '.env': 'DEBUG=false\n' })).problems[0]).toContain('SECRET_KEY is required');
    expect(refusal({}, project({ 'config/config.yaml': 'server:\n  debug: false\n' })).problems[0]).toContain(
      'SECRET_KEY is required',
    );
  });

  it('treats an empty SECRET_KEY as missing', () => {
    expect(refusal({ DEBUG: 'false', SECRET_KEY: '' }).problems[0]).toContain('SECRET_KEY is required');
  });

  it('treats a SECRET_KEY of only spaces as missing', () => {
    const { problems } = refusal({ DEBUG: 'false', SECRET_KEY: ' '.repeat(40) });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('auth.secret_key');
  });

  it.each([...KNOWN_PLACEHOLDER_SECRETS])('refuses the well-known placeholder %j', (placeholder) => {
    const { problems } = refusal({ DEBUG: 'false', SECRET_KEY: placeholder });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('auth.secret_key (from env SECRET_KEY)');
    expect(problems[0]).toContain('placeholder');
  });

  it('refuses a placeholder whatever its case, even one longer than the minimum', () => {
    const long = 'Replace-With-At-Least-32-Random-Characters';
    expect(long.length).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
    expect(refusal({ DEBUG: 'false', SECRET_KEY: long }).problems[0]).toContain('placeholder');
    expect(refusal({ DEBUG: 'false', SECRET_KEY: 'CHANGEME' }).problems[0]).toContain('placeholder');
  });

  it('refuses a secret shorter than 32 characters, naming its length and where it came from', () => {
    const short = GOOD_SECRET.slice(0, 31);
    const fromEnv = refusal({ DEBUG: 'false', SECRET_KEY: short }).problems;
    expect(fromEnv).toHaveLength(1);
    expect(fromEnv[0]).toContain('auth.secret_key (from env SECRET_KEY)');
    expect(fromEnv[0]).toContain('31 characters is too short');
    expect(fromEnv[0]).toContain('expected at least 32');

    const fromDotenv = refusal({ DEBUG: 'false' }, project({ '.env': `SECRET_KEY=${short}\n` })).problems;
    expect(fromDotenv[0]).toContain('(from .env SECRET_KEY)');

    const fromYaml = refusal(
      { DEBUG: 'false' },
      project({ 'config/config.yaml': `auth:\n  secret_key: ${short}\n` }),
    ).problems;
    expect(fromYaml[0]).toContain('(from yaml auth.secret_key)');
  });

  it.each([
    ['exactly 32 characters', GOOD_SECRET],
    ['64 characters', GOOD_SECRET.repeat(2)],
  ])('accepts a secret of %s and keeps it as given', (_label, secret) => {
    const { config, sources, warnings } = loadConfig({
      env: { DEBUG: 'false', SECRET_KEY: secret },
      cwd: project(),
    });
    expect(config.server.debug).toBe(false);
    expect(config.auth.secret_key).toBe(secret);
    expect(sources['auth.secret_key']).toBe('env');
    expect(warnings).toEqual([]);
  });

  it('accepts a secret from .env or config.yaml and records where it came from', () => {
    const fromDotenv = loadConfig({
      env: { DEBUG: 'false' },
      cwd: project({ '.env': `SECRET_KEY=${GOOD_SECRET}\n` }),
    });
    expect(fromDotenv.config.auth.secret_key).toBe(GOOD_SECRET);
    expect(fromDotenv.sources['auth.secret_key']).toBe('.env');
    const fromYaml = loadConfig({
      env: {},
      cwd: project({
        'config/config.yaml': `server:\n  debug: false\nauth:\n  secret_key: ${GOOD_SECRET}\n`,
      }),
    });
    expect(fromYaml.config.auth.secret_key).toBe(GOOD_SECRET);
    expect(fromYaml.sources['auth.secret_key']).toBe('yaml');
  });

  it('reports a missing secret together with the other problems, so one fix-up round is enough', () => {
    const { problems } = refusal({ DEBUG: 'false', PORT: 'abc' });
    expect(problems.some((line) => line.startsWith('server.port') && line.includes('env PORT'))).toBe(true);
    expect(problems.some((line) => line.includes('SECRET_KEY is required'))).toBe(true);
  });
});

describe('with DEBUG=true (the default)', () => {
  it('generates a random secret of at least 32 characters, and says so', () => {
    const { config, sources, warnings } = loadConfig({ env: {}, cwd: project() });
    expect(config.server.debug).toBe(true);
    expect(config.auth.secret_key).toBeDefined();
    expect(config.auth.secret_key!.length).toBeGreaterThanOrEqual(MIN_SECRET_LENGTH);
    expect(KNOWN_PLACEHOLDER_SECRETS.has(config.auth.secret_key!.toLowerCase())).toBe(false);
    expect(sources['auth.secret_key']).toBe('generated');
    const warning = warnings.find((w) => w.includes('SECRET_KEY'));
    expect(warning).toBeDefined();
    expect(warning).toContain('DEBUG=false');
    // The warning explains; it does not print the secret it made.
    expect(warnings.join('\n')).not.toContain(config.auth.secret_key);
  });

  it('generates a different secret on every load', () => {
    const secrets = new Set(
      Array.from(
        { length: 5 },
        () => loadConfig({ env: { DEBUG: 'true' }, cwd: project() }).config.auth.secret_key,
      ),
    );
    expect(secrets.size).toBe(5);
  });

  it('keeps a given secret, even a short one, without generating or warning', () => {
    const { config, sources, warnings } = loadConfig({
      env: { DEBUG: 'true', SECRET_KEY: 'dev' },
      cwd: project(),
    });
    expect(config.auth.secret_key).toBe('dev');
    expect(sources['auth.secret_key']).toBe('env');
    expect(warnings).toEqual([]);
  });
});

describe('the secret never appears in what is reported', () => {
  const secret = 'Zq8-wrong-secret-Vb3-Nc7';

  it('is not in the problem line for a short secret', () => {
    const error = refusal({ DEBUG: 'false', SECRET_KEY: secret });
    expectNoPieceOf(secret, error.problems.join('\n'));
    expectNoPieceOf(secret, error.message);
  });

  it('is not in the problem lines when the secret is reported among other bad values', () => {
    const error = refusal({ DEBUG: 'false', SECRET_KEY: secret, PORT: 'abc', LOG_LEVEL: 'loud' });
    expect(error.problems.length).toBeGreaterThanOrEqual(2);
    expectNoPieceOf(secret, error.problems.join('\n'));
  });

  it('is not in the problem line when the secret in config.yaml has the wrong type', () => {
    const numeric = '918273645546372819918273645546372819';
    const error = refusal(
      { DEBUG: 'false' },
      project({ 'config/config.yaml': `auth:\n  secret_key: ${numeric}\n` }),
    );
    const line = error.problems.find((l) => l.startsWith('auth.secret_key'));
    expect(line).toBeDefined();
    expect(line).toContain('[REDACTED]');
    expectNoPieceOf(numeric, error.problems.join('\n'));
  });

  it('is not in the problem line when config.json breaks right at the secret', () => {
    // A common slip: the value left unquoted. The parser's complaint must not quote the file back.
    const unquoted = 'Pk4x9Lw2Qz7Rm5Tn8Vb1Yc3Hd6Fg0Js';
    const cwd = project({ 'config/config.json': `{"auth": {"secret_key": ${unquoted}}}` });
    const error = refusal({ DEBUG: 'false' }, cwd);
    // Two problems: the broken file (with its position) and, since its secret could not be read, the
    // missing secret — both reported in one go.
    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toMatch(/not valid JSON( at line \d+, column \d+)?$/);
    expect(error.problems[1]).toContain('SECRET_KEY is required');
    expectNoPieceOf(unquoted, error.problems.join('\n'));
  });

  it('is not in the problem line when config.yaml breaks right at the secret', () => {
    const unterminated = 'Pk4x9Lw2Qz7Rm5Tn8Vb1Yc3Hd6Fg0Js';
    const cwd = project({
      'config/config.yaml': `auth:\n  secret_key: "${unterminated}\nserver:\n  port: 1\n`,
    });
    const error = refusal({ DEBUG: 'false' }, cwd);
    expect(error.problems[0]).toContain('not valid YAML');
    expectNoPieceOf(unterminated, error.problems.join('\n'));
  });
});
