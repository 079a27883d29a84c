// Accounts and the staff directory: creation (admin, import, bootstrap, CLI), profile and password
// changes, roles and status. Authorization is checked here, through the permission table.
import { MongoServerError } from 'mongodb';
import { assertCan, type Actor, type Role } from '../auth/permissions.js';
import { assertStrongPassword, hashPassword } from '../auth/passwords.js';
import type { Config } from '../config/index.js';
import { Errors, invalidCursor, validationError } from '../errors.js';
import { randomToken, sha256 } from '../lib/crypto.js';
import { isId, newId } from '../lib/ids.js';
import { pageOf } from '../lib/paging.js';
import { formatOptionalTimestamp, formatTimestamp } from '../lib/time.js';
import type { ClaimsRepository } from '../repositories/claims.js';
import type { LoginThrottleRepository } from '../repositories/login-throttle.js';
import type { PasswordTokensRepository } from '../repositories/password-tokens.js';
import type { UserDoc, UsersRepository, UserStatus } from '../repositories/users.js';
import { adminCreateUser } from '../schemas/users.js';
import type { AuditEvent, AuditService } from './audit.js';
import type { AuthService } from './auth.js';
import { NO_REQUEST, SYSTEM_ACTOR, type Principal, type RequestContext } from './context.js';
import { parseImportRow, type ImportRow } from './user-import-row.js';

/** The fields of a new account, as the API checks them (the password is checked on its own). */
const newUserFields = adminCreateUser.omit({ password: true });

export interface PublicUser {
  id: string;
  email: string;
  name: string;
  department: string;
  team: string | null;
  designation: string | null;
  roles: Role[];
  status: UserStatus;
  avatar_file_id: string | null;
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
}

export type PresenceStatus = 'online' | 'away' | 'busy';

export interface NewUser {
  email: string;
  name: string;
  department: string;
  team?: string | null;
  designation?: string | null;
  roles?: Role[];
  password?: string;
}

export interface AdminUserChanges {
  name?: string;
  roles?: Role[];
  department?: string;
  team?: string | null;
  designation?: string | null;
  status?: UserStatus;
}

export interface ProfileChanges {
  name?: string;
  designation?: string | null;
  avatar_file_id?: string | null;
}

export type ImportOutcome = 'created' | 'updated' | 'unchanged' | 'rejected';

export interface ImportRowReport {
  row: number;
  email: string | null;
  outcome: ImportOutcome;
  reason?: string;
  user_id?: string;
  set_password_token?: string;
}

/** Emitted after a user is created or changed; the conversations issue keeps department channels in sync. */
export interface UserChangeEvent {
  user: UserDoc;
  previous: UserDoc | null;
}

export type UserChangeListener = (event: UserChangeEvent) => Promise<void>;

export class UsersService {
  private readonly changeListeners: UserChangeListener[] = [];

  constructor(
    private readonly deps: {
      users: UsersRepository;
      throttle: LoginThrottleRepository;
      passwordTokens: PasswordTokensRepository;
      claims: ClaimsRepository;
      audit: AuditService;
      auth: () => AuthService;
      config: Config;
      now?: () => Date;
    },
  ) {}

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** An audit event about a user account. */
  private audit(
    action: string,
    actorId: string,
    targetId: string | null,
    context: RequestContext,
    extra: Pick<AuditEvent, 'details' | 'outcome'> = {},
  ): void {
    this.deps.audit.record(
      { action, actor_id: actorId, target_type: 'user', target_id: targetId, ...extra },
      context,
    );
  }

  /** Runs after every user creation or change, before the call returns (department channel sync). */
  onUserChanged(listener: UserChangeListener): void {
    this.changeListeners.push(listener);
  }

  private async changed(event: UserChangeEvent): Promise<void> {
    for (const listener of this.changeListeners) await listener(event);
  }

  /** The presence status the user chose last; `online` when none (or the user is gone). */
  async chosenPresence(userId: string): Promise<PresenceStatus> {
    return (await this.deps.users.findById(userId))?.presence_status ?? 'online';
  }

  async choosePresence(userId: string, status: PresenceStatus): Promise<void> {
    await this.deps.users.update(userId, { presence_status: status });
  }

  async markSeen(userId: string, at: Date): Promise<void> {
    await this.deps.users.touchLastSeen(userId, at);
  }

  toPublic(user: UserDoc): PublicUser {
    const tz = this.deps.config.server.timezone;
    return {
      id: user._id,
      email: user.email,
      name: user.name,
      department: user.department,
      team: user.team,
      designation: user.designation,
      roles: user.roles,
      status: user.status,
      avatar_file_id: user.avatar_file_id,
      created_at: formatTimestamp(user.created_at, tz),
      updated_at: formatTimestamp(user.updated_at, tz),
      last_seen_at: formatOptionalTimestamp(user.last_seen_at, tz),
    };
  }

  /** A user by id or email (case-insensitive), or USER_NOT_FOUND. */
  async resolve(reference: string): Promise<UserDoc> {
    const user = await this.deps.users.findByReference(reference);
    if (!user) throw new Errors.USER_NOT_FOUND();
    return user;
  }

  async get(actor: Actor, reference: string): Promise<PublicUser> {
    assertCan(actor, 'user.read_directory');
    return this.toPublic(await this.resolve(reference));
  }

  async directory(
    actor: Actor,
    query: { q?: string; department?: string; cursor?: string; limit: number },
  ): Promise<{ users: PublicUser[]; next_cursor: string | null; has_more: boolean }> {
    assertCan(actor, 'user.read_directory');
    const after = query.cursor ? decodeCursor(query.cursor) : undefined;
    const prefixes = query.q ? searchTerms(query.q) : [];
    if (query.q && prefixes.length === 0) return { users: [], next_cursor: null, has_more: false }; // only punctuation
    const page = await this.deps.users.directory({
      prefixes,
      department: query.department,
      after,
      limit: query.limit + 1,
    });
    const { rows, ...paging } = pageOf(page, query.limit, encodeCursor);
    return { users: rows.map((user) => this.toPublic(user)), ...paging };
  }

  /** Creates an account. Without a password it returns a one-time set-password token. */
  async create(
    actor: Actor,
    input: NewUser,
    context: RequestContext,
  ): Promise<{ user: PublicUser; set_password_token?: string }> {
    assertCan(actor, 'user.manage');
    const { user, setPasswordToken } = await this.insertUser(input);
    this.audit('user.create', actor.id, user._id, context, {
      details: { email: user.email, roles: user.roles },
    });
    await this.changed({ user, previous: null });
    return {
      user: this.toPublic(user),
      ...(setPasswordToken ? { set_password_token: setPasswordToken } : {}),
    };
  }

  private async insertUser(input: NewUser): Promise<{ user: UserDoc; setPasswordToken?: string }> {
    // Checked here too, not only at the API's edge: the command-line tool and the first-admin bootstrap
    // create users without passing through a route.
    const { password: _password, ...fields } = input;
    const checked = newUserFields.safeParse(fields);
    if (!checked.success) {
      const details = checked.error.issues.map((issue) => ({
        path: issue.path.join('.'),
        message: issue.message,
      }));
      throw validationError(
        `Invalid user: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`,
        details,
      );
    }
    const email = input.email.trim();
    if (input.password !== undefined) {
      assertStrongPassword(input.password, this.deps.config.auth.password_min_length, 'password', [
        email.split('@')[0]!,
        input.name,
      ]);
    }
    const now = this.now();
    const user: UserDoc = {
      _id: newId(),
      email,
      email_lower: email.toLowerCase(),
      name: input.name.trim(),
      name_lower: input.name.trim().toLowerCase(),
      search_terms: searchTerms(`${input.name} ${email.split('@')[0]} ${email}`),
      department: input.department.trim(),
      team: input.team?.trim() || null,
      designation: input.designation?.trim() || null,
      roles: normalizeRoles(input.roles),
      status: 'active',
      password_hash: input.password !== undefined ? await hashPassword(input.password) : null,
      avatar_file_id: null,
      created_at: now,
      updated_at: now,
      last_seen_at: null,
    };
    try {
      await this.deps.users.insert(user);
    } catch (error) {
      if (error instanceof MongoServerError && error.code === 11000) throw new Errors.EMAIL_TAKEN();
      throw error;
    }
    const setPasswordToken = user.password_hash ? undefined : await this.issueSetPasswordToken(user._id);
    return { user, setPasswordToken };
  }

  private async issueSetPasswordToken(userId: string): Promise<string> {
    const token = randomToken(32);
    const now = this.now();
    await this.deps.passwordTokens.insert({
      _id: sha256(token),
      user_id: userId,
      created_at: now,
      expires_at: new Date(now.getTime() + this.deps.config.auth.set_password_token_ttl_s * 1000),
      used_at: null,
    });
    return token;
  }

  /** Admin changes: roles, department, team, designation, name, enable/disable. */
  async adminUpdate(
    actor: Actor,
    reference: string,
    changes: AdminUserChanges,
    context: RequestContext,
  ): Promise<PublicUser> {
    assertCan(actor, 'user.manage');
    const previous = await this.resolve(reference);
    const set: Partial<UserDoc> = {};
    if (changes.name !== undefined) Object.assign(set, nameFields(changes.name, previous.email));
    if (changes.roles !== undefined) set.roles = normalizeRoles(changes.roles);
    if (changes.department !== undefined) set.department = changes.department.trim();
    if (changes.team !== undefined) set.team = changes.team?.trim() || null;
    if (changes.designation !== undefined) set.designation = changes.designation?.trim() || null;
    if (changes.status !== undefined) set.status = changes.status;

    const losesAdmin =
      previous.roles.includes('admin') &&
      previous.status === 'active' &&
      ((set.roles && !set.roles.includes('admin')) || set.status === 'disabled');
    if (losesAdmin && (await this.deps.users.countAdmins()) <= 1) {
      throw validationError('The last active admin cannot lose the admin role or be disabled', [
        { path: set.status === 'disabled' ? 'status' : 'roles', message: 'would leave no active admin' },
      ]);
    }
    set.updated_at = this.now();
    const user = await this.deps.users.update(previous._id, set);
    if (!user) throw new Errors.USER_NOT_FOUND();

    if (set.roles && !sameRoles(previous.roles, user.roles)) {
      this.audit('user.roles_change', actor.id, user._id, context, {
        details: { from: previous.roles, to: user.roles },
      });
    }
    if (set.status && previous.status !== user.status) {
      this.audit(user.status === 'disabled' ? 'user.disable' : 'user.enable', actor.id, user._id, context);
      if (user.status === 'disabled') {
        await this.deps.auth().revokeUserSessions(user._id, 'user_disabled', actor, context);
        await this.deps.passwordTokens.voidForUser(user._id, this.now());
      }
    }
    const otherChanges = Object.keys(changes).filter((key) => key !== 'roles' && key !== 'status');
    if (otherChanges.length) {
      this.audit('user.update', actor.id, user._id, context, { details: { fields: otherChanges } });
    }
    // Authentication caches the user briefly; role and status changes must apply at once here.
    this.deps.auth().forgetUser(user._id);
    await this.changed({ user, previous });
    return this.toPublic(user);
  }

  async updateProfile(
    principal: Principal,
    changes: ProfileChanges,
    context: RequestContext,
  ): Promise<PublicUser> {
    const previous = await this.resolve(principal.id);
    const set: Partial<UserDoc> = { updated_at: this.now() };
    if (changes.name !== undefined) Object.assign(set, nameFields(changes.name, previous.email));
    if (changes.designation !== undefined) set.designation = changes.designation?.trim() || null;
    if (changes.avatar_file_id !== undefined) set.avatar_file_id = changes.avatar_file_id;
    const user = await this.deps.users.update(principal.id, set);
    if (!user) throw new Errors.USER_NOT_FOUND();
    this.audit('user.profile_update', principal.id, user._id, context, {
      details: { fields: Object.keys(changes) },
    });
    this.deps.auth().forgetUser(user._id);
    await this.changed({ user, previous });
    return this.toPublic(user);
  }

  /** Changes the caller's password (current one required) and signs out their other sessions. */
  async changePassword(
    principal: Principal,
    current: string,
    next: string,
    context: RequestContext,
  ): Promise<void> {
    const user = await this.resolve(principal.id);
    if (!(await this.deps.auth().verifyCurrentPassword(user, current, context))) {
      this.audit('user.password_change', user._id, user._id, context, { outcome: 'failure' });
      throw new Errors.WRONG_PASSWORD();
    }
    assertStrongPassword(next, this.deps.config.auth.password_min_length, 'new_password', [
      user.email.split('@')[0]!,
      user.name,
    ]);
    await this.deps.users.update(user._id, {
      password_hash: await hashPassword(next),
      updated_at: this.now(),
    });
    await this.deps.passwordTokens.voidForUser(user._id, this.now());
    this.audit('user.password_change', user._id, user._id, context);
    await this.deps
      .auth()
      .revokeUserSessions(
        user._id,
        'password_changed',
        { id: user._id, roles: user.roles },
        context,
        principal.sessionId,
      );
  }

  /** Sets a password with a one-time token (new accounts, imports). */
  async setPasswordWithToken(token: string, password: string, context: RequestContext): Promise<void> {
    const hash = sha256(token);
    const now = this.now();
    const record = await this.deps.passwordTokens.findUsable(hash, now);
    const user = record ? await this.deps.users.findById(record.user_id) : null;
    if (!record || !user) throw new Errors.INVALID_SET_PASSWORD_TOKEN();
    // Checked before the token is spent: a weak choice should not burn it.
    assertStrongPassword(password, this.deps.config.auth.password_min_length, 'password', [
      user.email.split('@')[0]!,
      user.name,
    ]);
    // Exactly one of two concurrent uses wins (see ClaimsRepository).
    if (!(await this.deps.claims.claim(`set-password:${hash}`, now)))
      throw new Errors.INVALID_SET_PASSWORD_TOKEN();
    await this.deps.passwordTokens.markUsed(hash, now);
    await this.deps.users.update(user._id, {
      password_hash: await hashPassword(password),
      updated_at: this.now(),
    });
    await this.deps.passwordTokens.voidForUser(user._id, this.now());
    this.audit('user.password_set', user._id, user._id, context);
    await this.deps
      .auth()
      .revokeUserSessions(user._id, 'password_set', { id: user._id, roles: user.roles }, context);
  }

  /** Sets a password without the current one (command-line tool, run by an operator). */
  async resetPassword(
    actor: Actor,
    reference: string,
    password: string,
    context: RequestContext,
  ): Promise<void> {
    assertCan(actor, 'user.manage');
    const user = await this.resolve(reference);
    assertStrongPassword(password, this.deps.config.auth.password_min_length, 'password', [
      user.email.split('@')[0]!,
      user.name,
    ]);
    await this.deps.users.update(user._id, {
      password_hash: await hashPassword(password),
      updated_at: this.now(),
    });
    await this.deps.passwordTokens.voidForUser(user._id, this.now());
    this.audit('user.password_reset', actor.id, user._id, context);
    await this.deps.auth().revokeUserSessions(user._id, 'password_reset', actor, context);
  }

  /** Signs a user out everywhere (admins). */
  async revokeSessions(actor: Actor, reference: string, context: RequestContext): Promise<number> {
    assertCan(actor, 'session.revoke_any');
    const user = await this.resolve(reference);
    return this.deps.auth().revokeUserSessions(user._id, 'admin_revoked', actor, context);
  }

  async unlock(actor: Actor, reference: string, context: RequestContext): Promise<PublicUser> {
    assertCan(actor, 'user.manage');
    const user = await this.resolve(reference);
    await this.deps.throttle.remove(`account:${user.email_lower}`);
    this.audit('user.unlock', actor.id, user._id, context);
    return this.toPublic(user);
  }

  /**
   * Imports a staff list: idempotent on email. New people are created (with a one-time set-password
   * token); existing ones get their directory fields updated; passwords are never touched.
   */
  async import(
    actor: Actor,
    rows: unknown[],
    context: RequestContext,
  ): Promise<{ summary: Record<ImportOutcome, number>; rows: ImportRowReport[] }> {
    assertCan(actor, 'user.manage');
    const report: ImportRowReport[] = [];
    const seen = new Set<string>();
    for (const [index, raw] of rows.entries()) {
      const row = index + 1;
      const parsed = parseImportRow(raw);
      if ('error' in parsed) {
        report.push({ row, email: parsed.email, outcome: 'rejected', reason: parsed.error });
        continue;
      }
      const emailLower = parsed.email.toLowerCase();
      if (seen.has(emailLower)) {
        report.push({
          row,
          email: parsed.email,
          outcome: 'rejected',
          reason: 'duplicate email in this list',
        });
        continue;
      }
      seen.add(emailLower);
      try {
        report.push({ row, ...(await this.importOne(actor, parsed, context)) });
      } catch (error) {
        // A row the rules refuse (e.g. demoting the last admin) is reported; the rest of the list goes on.
        const status = (error as { statusCode?: number }).statusCode ?? 500;
        if (status >= 500) throw error;
        const reason =
          (error as { code?: string }).code === 'EMAIL_TAKEN'
            ? 'email taken by a concurrent change'
            : (error as Error).message;
        report.push({ row, email: parsed.email, outcome: 'rejected', reason });
      }
    }
    const summary = { created: 0, updated: 0, unchanged: 0, rejected: 0 };
    for (const entry of report) summary[entry.outcome] += 1;
    this.audit('user.import', actor.id, null, context, { details: summary });
    return { summary, rows: report };
  }

  private async importOne(
    actor: Actor,
    input: ImportRow,
    context: RequestContext,
  ): Promise<Omit<ImportRowReport, 'row'>> {
    const existing = await this.deps.users.findByEmail(input.email);
    if (!existing) {
      const { user, setPasswordToken } = await this.insertUser(input);
      this.audit('user.create', actor.id, user._id, context, {
        details: { email: user.email, via: 'import' },
      });
      await this.changed({ user, previous: null });
      return {
        email: user.email,
        outcome: 'created',
        user_id: user._id,
        set_password_token: setPasswordToken,
      };
    }
    // Only what the list says is applied: a column (or JSON key) it lacks, or an empty roles cell, leaves
    // that field as it is, so an HR export without roles never demotes anyone.
    const wanted: Partial<Pick<UserDoc, 'name' | 'department' | 'team' | 'designation' | 'roles'>> = {
      name: input.name,
      department: input.department,
    };
    if (input.team !== undefined) wanted.team = input.team;
    if (input.designation !== undefined) wanted.designation = input.designation;
    if (input.roles !== undefined) wanted.roles = normalizeRoles(input.roles);
    const changed = (Object.keys(wanted) as (keyof typeof wanted)[]).filter((key) =>
      key === 'roles' ? !sameRoles(existing.roles, wanted.roles!) : existing[key] !== wanted[key],
    );
    if (changed.length === 0) return { email: existing.email, outcome: 'unchanged', user_id: existing._id };
    await this.adminUpdate(
      actor,
      existing._id,
      Object.fromEntries(changed.map((key) => [key, wanted[key]])),
      context,
    );
    return { email: existing.email, outcome: 'updated', user_id: existing._id };
  }

  /** Creates the first admin from ADMIN_EMAIL/ADMIN_PASSWORD when no admin exists yet. */
  async bootstrapAdmin(log: {
    info: (obj: object, msg: string) => void;
    warn: (obj: object, msg: string) => void;
  }): Promise<void> {
    if ((await this.deps.users.countAdmins()) > 0) return;
    const { admin_email: email, admin_password: password } = this.deps.config.auth;
    if (!email || !password) {
      log.warn(
        {},
        'no admin account exists: set ADMIN_EMAIL and ADMIN_PASSWORD, or run `npm run admin -- create-user --admin`',
      );
      return;
    }
    const existing = await this.deps.users.findByEmail(email);
    const context = { ...NO_REQUEST, requestId: 'bootstrap' };
    if (existing) {
      await this.deps.users.update(existing._id, {
        roles: normalizeRoles([...existing.roles, 'admin']),
        status: 'active',
        updated_at: this.now(),
      });
      this.audit('user.roles_change', SYSTEM_ACTOR.id, existing._id, context, {
        details: { via: 'bootstrap', added: 'admin' },
      });
      log.info({ email }, 'first admin: existing user promoted to admin');
      return;
    }
    let user: UserDoc;
    try {
      ({ user } = await this.insertUser({
        email,
        name: 'Administrator',
        department: 'Administration',
        roles: ['admin'],
        password,
      }));
    } catch (error) {
      if ((error as { code?: string }).code !== 'VALIDATION_FAILED') throw error;
      // A weak ADMIN_PASSWORD is a configuration mistake: say so once instead of retrying forever.
      log.warn({ reason: (error as Error).message }, 'first admin not created: ADMIN_PASSWORD was refused');
      return;
    }
    this.audit('user.create', SYSTEM_ACTOR.id, user._id, context, {
      details: { via: 'bootstrap', roles: user.roles },
    });
    await this.changed({ user, previous: null });
    log.info({ email, user_id: user._id }, 'first admin created');
  }

  /** Who receives server-wide alerts meant for administrators (no actor: the server asks). */
  activeAdminIds(): Promise<string[]> {
    return this.deps.users.activeAdminIds();
  }

  async listAll(actor: Actor, limit = 1000): Promise<PublicUser[]> {
    assertCan(actor, 'user.manage');
    return (await this.deps.users.list(limit)).map((user) => this.toPublic(user));
  }
}

const ROLE_ORDER: Role[] = ['admin', 'moderator', 'member'];

/** Every user is a member; roles are unique and in a stable order. */
function normalizeRoles(roles: readonly Role[] | undefined): Role[] {
  const unknown = (roles ?? []).filter((role) => !ROLE_ORDER.includes(role));
  if (unknown.length) {
    throw validationError(`Unknown role(s): ${unknown.join(', ')}`, [
      { path: 'roles', message: 'must be admin, moderator or member' },
    ]);
  }
  const set = new Set<Role>([...(roles ?? []), 'member']);
  return ROLE_ORDER.filter((role) => set.has(role));
}

function sameRoles(a: readonly Role[], b: readonly Role[]): boolean {
  return normalizeRoles(a).join() === normalizeRoles(b).join();
}

function nameFields(name: string, email: string): Pick<UserDoc, 'name' | 'name_lower' | 'search_terms'> {
  const trimmed = name.trim();
  return {
    name: trimmed,
    name_lower: trimmed.toLowerCase(),
    search_terms: searchTerms(`${trimmed} ${email.split('@')[0]} ${email}`),
  };
}

/** Lower-cased words without accents: "Zoë O'Brien-Singh" → ["zoe", "o", "brien", "singh"]. */
export function searchTerms(text: string): string[] {
  const words = text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}@.]+/u)
    .flatMap((word) => (word.includes('@') ? [word] : word.split('.')))
    .filter(Boolean);
  return [...new Set(words)];
}

function encodeCursor(user: UserDoc): string {
  return Buffer.from(JSON.stringify([user.name_lower, user._id])).toString('base64url');
}

function decodeCursor(cursor: string): { name_lower: string; id: string } {
  try {
    const [nameLower, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (typeof nameLower === 'string' && typeof id === 'string' && isId(id))
      return { name_lower: nameLower, id };
  } catch {
    // fall through
  }
  throw invalidCursor();
}
