import { z } from 'zod';
import { line } from './common.js';
import { userSchema } from './users.js';

export const loginBody = z
  .strictObject({
    email: line(254).optional(),
    identifier: line(254).optional().describe('Alias of email'),
    password: z.string().min(1).max(256),
  })
  .refine((value) => value.email !== undefined || value.identifier !== undefined, {
    error: 'email or identifier is required',
    path: ['email'],
  });

export const tokenPairSchema = z.object({
  access_token: z.string(),
  token_type: z.literal('Bearer'),
  expires_in: z.number().describe('Access token lifetime in seconds'),
  refresh_token: z.string(),
  user: userSchema,
});

export const refreshBody = z.strictObject({ refresh_token: z.string().min(1).max(200) });

export const setPasswordBody = z.strictObject({
  token: z.string().min(1).max(200),
  password: z.string().min(1).max(256),
});

export const sessionSchema = z.object({
  user_id: z.string(),
  session_id: z.string(),
  roles: z.array(z.string()),
});
