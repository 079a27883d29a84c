// What services need to know about the caller's request, without seeing the request itself.
import type { Role } from '../auth/permissions.js';

export interface RequestContext {
  requestId: string;
  ip: string | null;
  userAgent: string | null;
}

/** The authenticated caller, as services see it. */
export interface Principal {
  id: string;
  sessionId: string;
  email: string;
  name: string;
  department: string;
  roles: Role[];
}

/** The actor for work the server does on its own (bootstrap, command-line tools). */
export const SYSTEM_ACTOR = { id: 'system', roles: ['admin'] as Role[] };

export const NO_REQUEST: RequestContext = { requestId: 'internal', ip: null, userAgent: null };
