// Schemas of the audit trail's admin routes: the filtered, paged list and the chain verification.
import { z } from 'zod';
import { limit, line } from './common.js';

const timestamp = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time' });

export const auditListQuery = z.strictObject({
  actor: line(254).optional().describe('Who acted: a user id or email, or "system" / "cli"'),
  action: z
    .string()
    .max(100, { error: 'must be at most 100 characters' })
    .regex(/^[A-Za-z0-9_.:-]*\*?$/, {
      error: 'must be an action name (letters, digits, ".", "_", ":", "-"), optionally ending in "*"',
    })
    .refine((value) => value.length > 0, { error: 'must not be empty' })
    .optional()
    .describe('An exact action (`user.create`), or a prefix ending in `*` (`user.*`)'),
  target: line(254)
    .optional()
    .describe('What was acted on: its id (a user, channel, message, file…) or, for logins, the email'),
  since: timestamp.optional().describe('Records at or after this time'),
  until: timestamp.optional().describe('Records before this time (exclusive)'),
  before: z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('Cursor: records with a lower seq (`next_before` of the previous page)'),
  limit: limit(50, 200),
});

const hash = z.string().regex(/^[0-9a-f]{64}$/);

export const auditRecordSchema = z
  .object({
    id: z.string(),
    seq: z.number().int().describe('Position in the chain: 1, 2, 3…, no gaps'),
    at: z.string(),
    action: z.string().describe('e.g. auth.login, user.create, channel.archive, admin.config_view'),
    actor_id: z.string().nullable().describe('A user id, "system" or "cli"; null when nobody signed in'),
    target_type: z.string().nullable(),
    target_id: z.string().nullable(),
    outcome: z.enum(['success', 'failure']),
    details: z.record(z.string(), z.unknown()),
    request_id: z.string().nullable(),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    prev_hash: hash.describe('hash of the record before (64 zeros for seq 1)'),
    hash: hash.describe(
      'SHA-256 (hex) of the record’s canonical JSON without `hash`: keys sorted, `id` as `_id`, `at` in UTC',
    ),
  })
  .meta({ id: 'AuditRecord' });

export const auditListResponse = z
  .object({
    records: z.array(auditRecordSchema).describe('Newest first'),
    has_more: z.boolean(),
    next_before: z.number().int().nullable().describe('`before` for the next page; null on the last'),
  })
  .meta({ id: 'AuditRecords' });

export const auditVerifyResponse = z
  .object({
    ok: z.boolean(),
    checked: z.number().int().describe('Records found intact, in seq order, before any break'),
    broken_at: z
      .object({
        seq: z.number().int(),
        id: z.string().nullable().describe('null when the record at this seq is missing'),
        reason: z
          .enum(['hash_mismatch', 'prev_hash_mismatch', 'missing_record'])
          .describe(
            'hash_mismatch: the record was changed; prev_hash_mismatch: it does not follow the record ' +
              'before (that one was replaced, or records were reordered); missing_record: no record ' +
              'with this seq (deleted)',
          ),
      })
      .optional()
      .describe('The first break, when ok is false'),
  })
  .meta({ id: 'AuditVerification' });
