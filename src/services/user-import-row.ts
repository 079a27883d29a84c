// Reading one row of a staff list (CSV or JSON) for the import: what it says, or why it cannot be used.
import { ROLES, type Role } from '../auth/permissions.js';
import { hasControlCharacters } from '../lib/text.js';

/** One validated staff-list row; undefined optional fields were not in the list. */
export interface ImportRow {
  email: string;
  name: string;
  department: string;
  team: string | null | undefined;
  designation: string | null | undefined;
  roles: Role[] | undefined;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/;
/** The same bound as the API's fields. */
const IMPORT_FIELD_MAX = 100;

/** Validates one staff-list row (from CSV or JSON); roles may be a list or "admin;moderator". */
export function parseImportRow(raw: unknown): ImportRow | { error: string; email: string | null } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    return { error: 'row is not an object', email: null };
  const row = raw as Record<string, unknown>;
  const text = (key: string) =>
    typeof row[key] === 'string' ? (row[key] as string).trim() : row[key] == null ? '' : null;
  const email = text('email');
  const shownEmail = typeof email === 'string' && email.length <= 254 ? email : null;
  const unknown = Object.keys(row).filter(
    (key) => !['email', 'name', 'department', 'team', 'designation', 'roles'].includes(key),
  );
  if (unknown.length)
    return { error: `unknown field(s): ${unknown.slice(0, 5).join(', ')}`, email: shownEmail };
  if (!email || !EMAIL.test(email) || hasControlCharacters(email))
    return { error: 'email is missing or malformed', email: shownEmail };
  const fields = {
    name: text('name'),
    department: text('department'),
    team: text('team'),
    designation: text('designation'),
  };
  for (const [key, value] of Object.entries(fields)) {
    if (value === null) return { error: `${key} must be text`, email };
    if (value.length > IMPORT_FIELD_MAX)
      return { error: `${key} is longer than ${IMPORT_FIELD_MAX} characters`, email };
    if (hasControlCharacters(value)) return { error: `${key} contains control characters`, email };
  }
  if (!fields.name) return { error: 'name is required', email };
  if (!fields.department) return { error: 'department is required', email };
  const rolesRaw = row.roles;
  const roles = Array.isArray(rolesRaw)
    ? rolesRaw
    : typeof rolesRaw === 'string'
      ? rolesRaw.split(/[;|,\s]+/).filter(Boolean)
      : rolesRaw == null
        ? []
        : null;
  if (!roles || roles.some((role) => !(ROLES as readonly string[]).includes(role as string))) {
    return { error: 'roles must be admin, moderator and/or member', email };
  }
  // Absent (undefined) means "not in this list": existing users keep what they have.
  const optional = (key: 'team' | 'designation') => (key in row ? fields[key] || null : undefined);
  return {
    email,
    name: fields.name,
    department: fields.department,
    team: optional('team'),
    designation: optional('designation'),
    roles: roles.length ? (roles as Role[]) : undefined,
  };
}
