// The permission table: who may do what. Every service asks `assertCan` before acting; routes never
// decide authorization on their own. Contextual rules (channel owners, the sender of a message) are
// checked by the service that knows the context, on top of this table.
import { Errors } from '../errors.js';

export const ROLES = ['admin', 'moderator', 'member'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = {
  'channel.create.direct': ['member', 'moderator', 'admin'],
  'channel.create.group': ['member', 'moderator', 'admin'],
  'channel.create.public': ['moderator', 'admin'],
  'channel.create.department': ['admin'],
  'channel.manage_any': ['admin'],
  'channel.manage_members_any': ['moderator', 'admin'],
  'message.delete_any': ['moderator', 'admin'],
  'file.delete_any': ['admin'],
  'announcement.manage': ['admin'],
  'user.read_directory': ['member', 'moderator', 'admin'],
  'user.manage': ['admin'],
  'session.revoke_any': ['admin'],
  'audit.read': ['admin'],
  'security.read': ['admin'],
  'security.manage': ['admin'],
  'logs.read': ['admin'],
  'analytics.read': ['admin'],
  'config.read': ['admin'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export interface Actor {
  id: string;
  roles: readonly Role[];
}

export function can(actor: Actor, permission: Permission): boolean {
  const allowed: readonly Role[] = PERMISSIONS[permission];
  return actor.roles.some((role) => allowed.includes(role));
}

export function assertCan(actor: Actor, permission: Permission): void {
  if (!can(actor, permission)) throw new Errors.FORBIDDEN();
}
