// `npm run admin -- <command>`: account administration from a shell, through the same services as the
// API (so the same validation, audit records and session revocation apply). It uses MONGO_URL, or the
// embedded database of a running server, or starts the embedded database itself.
import { parseArgs } from 'node:util';
import { loadConfig, type LoadedConfig } from '../config/index.js';
import { findRunningEmbedded } from '../db/embedded.js';
import { buildServer, type BuiltServer } from '../server.js';
import type { Role } from '../auth/permissions.js';
import { NO_REQUEST, SYSTEM_ACTOR, type RequestContext } from '../services/context.js';

const USAGE = `usage: npm run admin -- <command> [options]

commands:
  create-user --email E --name N --department D [--team T] [--designation X] [--roles r1,r2] [--admin] [--password P]
              creates an account; without --password prints a one-time set-password token
  set-password --user <id|email> --password P     sets a password (signs the user out everywhere)
  set-roles --user <id|email> --roles r1,r2        roles: admin, moderator, member
  unlock --user <id|email>                         lifts a login lockout
  revoke-sessions --user <id|email>                signs the user out everywhere
  list-users [--limit N]                           prints every account (email, roles, status)`;

const CLI_ACTOR = { ...SYSTEM_ACTOR, id: 'cli' };
const CLI_CONTEXT: RequestContext = { ...NO_REQUEST, requestId: 'cli', userAgent: 'switchboard-admin-cli' };

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      name: { type: 'string' },
      department: { type: 'string' },
      team: { type: 'string' },
      designation: { type: 'string' },
      roles: { type: 'string' },
      admin: { type: 'boolean' },
      password: { type: 'string' },
      user: { type: 'string' },
      limit: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (!command || values.help) {
    console.error(USAGE);
    return command ? 0 : 2;
  }
  const server = await openServer(loadConfig());
  try {
    const users = server.app.users;
    const roles = () => (values.roles ?? '').split(',').filter(Boolean) as Role[];
    const need = (name: keyof typeof values) => {
      const value = values[name];
      if (typeof value !== 'string' || value === '')
        throw new UsageError(`--${name} is required for ${command}`);
      return value;
    };
    switch (command) {
      case 'create-user': {
        const result = await users.create(
          CLI_ACTOR,
          {
            email: need('email'),
            name: need('name'),
            department: need('department'),
            team: values.team,
            designation: values.designation,
            roles: values.admin ? [...roles(), 'admin'] : roles(),
            password: values.password,
          },
          CLI_CONTEXT,
        );
        print(result);
        return 0;
      }
      case 'set-password':
        await users.resetPassword(CLI_ACTOR, need('user'), need('password'), CLI_CONTEXT);
        print({ ok: true });
        return 0;
      case 'set-roles':
        need('roles');
        print(await users.adminUpdate(CLI_ACTOR, need('user'), { roles: roles() }, CLI_CONTEXT));
        return 0;
      case 'unlock':
        print(await users.unlock(CLI_ACTOR, need('user'), CLI_CONTEXT));
        return 0;
      case 'revoke-sessions':
        print({ revoked: await users.revokeSessions(CLI_ACTOR, need('user'), CLI_CONTEXT) });
        return 0;
      case 'list-users':
        for (const user of await users.listAll(CLI_ACTOR, Number(values.limit ?? 1000))) {
          process.stdout.write(
            `${user.id}  ${user.email.padEnd(32)} ${user.roles.join(',').padEnd(24)} ${user.status}  ${user.name}\n`,
          );
        }
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } finally {
    await server.close();
  }
}

/** The app without listening, on the same database the server uses. */
async function openServer(loaded: LoadedConfig): Promise<BuiltServer> {
  const { database } = loaded.config;
  const running = database.url ? undefined : findRunningEmbedded(database.data_dir);
  const overrides = running ? { database: { url: running.url } } : {};
  const config = running ? loadConfig({ overrides }) : loaded;
  return buildServer({
    ...config,
    config: { ...config.config, logging: { ...config.config.logging, console: 'off' } },
  });
}

class UsageError extends Error {}

function print(value: unknown): void {
  // The result is the command's output: stdout, as JSON, for scripts.
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error & { code?: string; details?: unknown }) => {
    if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`);
    else
      console.error(
        `error: ${error.code ? `${error.code}: ` : ''}${error.message}`,
        error.details ? JSON.stringify(error.details) : '',
      );
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
