// Schemas of the conversations API: channels, members, messages, reactions, read state, history,
// changes, search, notifications and announcements. Shared by the routes, the OpenAPI document and
// (realtime issue) the WebSocket protocol.
import { z } from 'zod';
import { CHANNEL_KINDS } from '../repositories/channels.js';
import { MESSAGE_ID_PATTERN } from '../repositories/messages.js';
import { MESSAGE_TYPES, REACTION_PATTERN } from '../services/message-content.js';
import { limit, line, text, userRef } from './common.js';

const objectId = (what: string) => z.string().regex(/^[0-9a-f]{24}$/, { error: `must be ${what} id` });
export const messageId = z.string().regex(MESSAGE_ID_PATTERN, { error: 'must be a message id' });

/** Channel names: letters, digits, "-", "_" and "."; not shaped like an id (references accept both). */
export const channelName = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(80, { error: 'must be at most 80 characters' })
  .regex(/^[\p{L}\p{N}][\p{L}\p{N}._-]*$/u, {
    error: 'must start with a letter or digit and contain only letters, digits, ".", "-" and "_"',
  })
  .refine((value) => !/^[0-9a-f]{24}$/i.test(value), { error: 'must not look like an id' });

/** A channel reference in a path or body: its id or its unique name. */
export const channelRef = z.string().trim().min(1).max(200);

const seq = z.coerce
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .min(0, { error: 'must be 0 or more' })
  .max(Number.MAX_SAFE_INTEGER);

const timestamp = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time' });

export const channelParams = z.strictObject({ channelId: channelRef.describe('Channel id or name') });
export const channelMemberParams = z.strictObject({
  channelId: channelRef.describe('Channel id or name'),
  userId: userRef.describe('User id or email'),
});
export const messageParams = z.strictObject({ messageId });
export const reactionParams = z.strictObject({
  messageId,
  reaction: z.string().regex(REACTION_PATTERN, {
    error: 'must be 1-64 characters without spaces or control characters',
  }),
});

export const channelSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    kind: z.enum(CHANNEL_KINDS),
    description: z.string().nullable(),
    department: z.string().nullable(),
    participants: z.array(z.string()).nullable().describe('Direct channels: the two user ids'),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    archived: z.boolean(),
    archived_at: z.string().nullable(),
    last_seq: z.number().describe('seq of the newest message'),
    last_message_at: z.string().nullable(),
    unread_count: z.number(),
    membership: z
      .object({
        role: z.enum(['owner', 'member']),
        last_read_seq: z.number(),
        joined_at: z.string(),
        muted: z.boolean(),
        hidden: z.boolean(),
      })
      .nullable()
      .describe('The caller’s membership; null when not a member'),
    member_count: z.number().optional(),
  })
  .meta({ id: 'Channel' });

export const createChannelBody = z.strictObject({
  name: channelName.optional().describe('Required except for direct channels'),
  kind: z.enum(CHANNEL_KINDS, { error: `must be one of ${CHANNEL_KINDS.join(', ')}` }),
  members: z.array(userRef).max(500).optional().describe('User ids or emails'),
  description: line(500).nullable().optional(),
  department: line(100).optional().describe('Department channels: the department (default: the name)'),
});

export const updateChannelBody = z
  .strictObject({ name: channelName.optional(), description: line(500).nullable().optional() })
  .refine((value) => Object.keys(value).length > 0, { error: 'nothing to change' });

export const channelListQuery = z.strictObject({
  scope: z
    .enum(['mine', 'public'])
    .default('mine')
    .describe('mine: my channels; public: channels I may join'),
  include_archived: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
  cursor: z.string().max(200).optional(),
  limit: limit(100),
});

export const channelListResponse = z.object({
  channels: z.array(channelSchema),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});

export const preferencesBody = z
  .strictObject({ muted: z.boolean().optional(), hidden: z.boolean().optional() })
  .refine((value) => Object.keys(value).length > 0, { error: 'nothing to change' });

export const membersQuery = z.strictObject({ cursor: z.string().max(100).optional(), limit: limit(100) });
export const membersResponse = z.object({
  members: z.array(
    z.object({
      user_id: z.string(),
      name: z.string(),
      email: z.string(),
      role: z.enum(['owner', 'member']),
      joined_at: z.string(),
    }),
  ),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});
export const memberRoleBody = z.strictObject({
  role: z.enum(['owner', 'member'], { error: 'must be owner or member' }),
});
export const memberRoleResponse = z.object({
  channel_id: z.string(),
  user_id: z.string(),
  role: z.enum(['owner', 'member']),
});
export const addMembersBody = z.strictObject({ members: z.array(userRef).min(1).max(500) });
export const addMembersResponse = z.object({ channel_id: z.string(), added: z.array(z.string()) });

export const reactionSchema = z.object({
  reaction_type: z.string(),
  user_ids: z.array(z.string()),
  count: z.number(),
});

export const messageSchema = z
  .object({
    id: z.string().describe('Opaque; "<channel_id>-<seq>" today, but do not rely on its shape'),
    channel_id: z.string(),
    channel_kind: z.enum(CHANNEL_KINDS),
    recipient_id: z.string().nullable().describe('Direct channels: the participant who is not the sender'),
    sender_id: z.string(),
    sender_name: z.string(),
    content: z.string().describe('Plain text (empty for a deleted message); clients escape it'),
    message_type: z.string(),
    seq: z.number().describe('Position in the channel: strictly increasing, gap-free'),
    change_seq: z
      .number()
      .describe('Position of this message’s latest change; pass the highest seen as since_seq to /changes'),
    reply_to: z.string().nullable(),
    attachments: z.array(
      z.object({
        id: z.string(),
        file_name: z.string(),
        file_type: z.string(),
        file_size: z.number(),
        file_url: z
          .string()
          .nullable()
          .describe('Signed download link (works without headers until it expires); null once deleted'),
        deleted: z.boolean().describe('The file was deleted after it was shared'),
      }),
    ),
    reactions: z.array(reactionSchema),
    edited_at: z.string().nullable(),
    deleted: z.boolean(),
    timestamp: z.string(),
    client_id: z.string().nullable(),
  })
  .meta({ id: 'Message' });

/** Only the limit applies here; the service checks the configured maximum and control characters. */
/** Message content before the service's own checks (length from config, control characters). */
export const content = z.string().max(100_000, { error: 'is too long' });
/** The sender's own id for a message: a retry with the same one returns the stored message. */
export const clientId = z
  .string()
  .trim()
  .min(1)
  .max(64, { error: 'must be at most 64 characters' })
  .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' });
export const fileId = objectId('a file');
/**
 * Files attached by id. The original clients send whole attachment objects: only their `id` is read;
 * name, type, size and URL always come from the stored file.
 */
export const attachmentIds = z
  .array(
    z
      .union([fileId, z.looseObject({ id: fileId })])
      .transform((entry) => (typeof entry === 'string' ? entry : entry.id)),
  )
  .max(10, { error: 'at most 10 files per message' });
export const reactionType = z.string().regex(REACTION_PATTERN, {
  error: 'must be 1-64 characters without spaces or control characters',
});

export const sendMessageBody = z
  .object({
    content,
    channel_id: channelRef.optional(),
    recipient_id: userRef.optional(),
    message_type: z.enum(MESSAGE_TYPES, { error: `must be one of ${MESSAGE_TYPES.join(', ')}` }).optional(),
    client_id: clientId.optional(),
    reply_to: messageId.nullable().optional(),
    attachments: attachmentIds.optional().describe('File ids from POST /files'),
    // The seed's clients send these; the sender is always the authenticated user, so they are ignored.
    sender_id: z.unknown().optional(),
    sender_name: z.unknown().optional(),
  })
  .strict()
  .refine((body) => (body.channel_id === undefined) !== (body.recipient_id === undefined), {
    error: 'give exactly one of channel_id and recipient_id',
    path: ['channel_id'],
  });

export const editMessageBody = z.strictObject({ content });

export const historyQuery = z.strictObject({
  before_seq: seq.optional(),
  after_seq: seq.optional(),
  limit: limit(50),
});

export const seedHistoryQuery = z
  .strictObject({
    channel_id: channelRef.optional(),
    recipient_id: userRef.optional(),
    before: messageId.optional().describe('A message id: messages before it'),
    after: messageId.optional().describe('A message id: messages after it'),
    limit: limit(50),
  })
  .refine((query) => (query.channel_id === undefined) !== (query.recipient_id === undefined), {
    error: 'give exactly one of channel_id and recipient_id',
    path: ['channel_id'],
  });

export const historyResponse = z.object({
  channel_id: z.string().nullable(),
  messages: z.array(messageSchema),
  has_more: z.boolean(),
  last_seq: z.number(),
});

export const changesQuery = z.strictObject({ since_seq: seq.default(0), limit: limit(100) });
export const changesResponse = z.object({
  channel_id: z.string(),
  messages: z.array(messageSchema),
  last_seq: z.number().describe('The new high-water mark: pass it as since_seq next time'),
  has_more: z.boolean(),
});

export const reactionQuery = z.strictObject({
  replace: z
    .string()
    .regex(REACTION_PATTERN, { error: 'must be 1-64 characters without spaces or control characters' })
    .optional()
    .describe('A reaction of mine to replace with this one'),
});
export const reactionResponse = z.object({
  message_id: z.string(),
  channel_id: z.string(),
  reactions: z.array(reactionSchema),
  change_seq: z.number(),
});

export const readBody = z.strictObject({ seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });
export const readResponse = z.object({
  channel_id: z.string(),
  last_read_seq: z.number(),
  unread_count: z.number(),
});

export const searchQuery = z.strictObject({
  q: z.string().trim().min(1, { error: 'must not be empty' }).max(200),
  channel_id: channelRef.optional(),
  sender_id: userRef.optional(),
  before: timestamp.optional().describe('Only messages sent before this time'),
  after: timestamp.optional().describe('Only messages sent after this time'),
  cursor: z.string().max(300).optional().describe('next_cursor of the previous page'),
  limit: limit(20),
});
export const searchResponse = z.object({
  messages: z.array(messageSchema),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});

export const notificationSchema = z
  .object({
    id: z.string(),
    kind: z.literal('mention'),
    channel_id: z.string(),
    message_id: z.string(),
    seq: z.number(),
    from_user_id: z.string(),
    from_name: z.string(),
    excerpt: z.string(),
    created_at: z.string(),
    read_at: z.string().nullable(),
  })
  .meta({ id: 'Notification' });

export const notificationsQuery = z.strictObject({
  unread_only: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
  cursor: z.string().max(100).optional(),
  limit: limit(50),
});
export const notificationsResponse = z.object({
  notifications: z.array(notificationSchema),
  unread_count: z.number(),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});
export const markNotificationsBody = z.strictObject({
  ids: z.array(objectId('a notification')).min(1).max(500).optional().describe('Omit to mark all read'),
});
export const markNotificationsResponse = z.object({ updated: z.number(), unread_count: z.number() });

export const announcementSchema = z
  .object({
    id: z.string(),
    title: z.string(),
    content: z.string(),
    priority: z.enum(['high', 'medium', 'low']),
    created_by: z.string(),
    created_at: z.string(),
    scheduled_at: z.string().nullable(),
    published_at: z.string().nullable(),
    published: z.boolean(),
  })
  .meta({ id: 'Announcement' });

export const createAnnouncementBody = z.strictObject({
  title: line(200),
  content: text(10_000),
  priority: z.enum(['high', 'medium', 'low'], { error: 'must be high, medium or low' }).default('medium'),
  scheduled_at: timestamp.nullable().optional().describe('When to publish; omit (or a past time) for now'),
});
export const announcementParams = z.strictObject({ id: objectId('an announcement') });
export const announcementsQuery = z.strictObject({
  cursor: z.string().max(100).optional(),
  limit: limit(50),
});
export const announcementsResponse = z.object({
  announcements: z.array(announcementSchema),
  next_cursor: z.string().nullable(),
  has_more: z.boolean(),
});
