import { z } from 'zod';
import { ROLES } from '../auth/permissions.js';
import { email, limit, line, userRef } from './common.js';

export const roleSchema = z.enum(ROLES, { error: `must be one of ${ROLES.join(', ')}` });

export const userSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    department: z.string(),
    team: z.string().nullable(),
    designation: z.string().nullable(),
    roles: z.array(roleSchema),
    status: z.enum(['active', 'disabled']),
    avatar_file_id: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    last_seen_at: z.string().nullable(),
  })
  .meta({ id: 'User' });

export const userParams = z.strictObject({ userId: userRef.describe('User id or email (case-insensitive)') });

export const directoryQuery = z.strictObject({
  q: z.string().trim().max(100).optional().describe('Prefix of a word of the name or email'),
  department: z.string().trim().max(100).optional(),
  cursor: z.string().max(500).optional().describe('next_cursor of the previous page'),
  limit: limit(50),
});

export const directoryResponse = z.object({
  users: z.array(userSchema),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});

export const profilePatch = z
  .strictObject({
    name: line(100).optional(),
    designation: line(100).nullable().optional(),
    avatar_file_id: z
      .string()
      .regex(/^[0-9a-f]{24}$/, { error: 'must be a file id' })
      .nullable()
      .optional(),
  })
  .refine((value) => Object.keys(value).length > 0, { error: 'nothing to change' });

export const passwordChange = z.strictObject({
  current_password: z.string().min(1).max(256),
  new_password: z.string().min(1).max(256),
});

export const adminCreateUser = z.strictObject({
  email,
  name: line(100),
  department: line(100),
  team: line(100).nullable().optional(),
  designation: line(100).nullable().optional(),
  roles: z.array(roleSchema).max(3).optional(),
  password: z.string().min(1).max(256).optional(),
});

export const adminCreateUserResponse = userSchema.extend({
  set_password_token: z
    .string()
    .optional()
    .describe('One-time token for POST /auth/set-password (only when no password was given)'),
});

export const adminPatchUser = z
  .strictObject({
    name: line(100).optional(),
    roles: z.array(roleSchema).min(1).max(3).optional(),
    department: line(100).optional(),
    team: line(100).nullable().optional(),
    designation: line(100).nullable().optional(),
    status: z.enum(['active', 'disabled']).optional(),
    disabled: z.boolean().optional().describe('Shorthand for status: true → disabled, false → active'),
  })
  .refine((value) => Object.keys(value).length > 0, { error: 'nothing to change' })
  .refine((value) => value.status === undefined || value.disabled === undefined, {
    error: 'give status or disabled, not both',
  });

export const importResponse = z.object({
  summary: z.object({
    created: z.number(),
    updated: z.number(),
    unchanged: z.number(),
    rejected: z.number(),
  }),
  rows: z.array(
    z.object({
      row: z.number(),
      email: z.string().nullable(),
      outcome: z.enum(['created', 'updated', 'unchanged', 'rejected']),
      reason: z.string().optional(),
      user_id: z.string().optional(),
      set_password_token: z.string().optional(),
    }),
  ),
});

export const revokeSessionsResponse = z.object({ revoked: z.number() });
