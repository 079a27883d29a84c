// Rules for what a message may contain, and the parts of a message the API shows. Checked by the
// messages service whatever the transport (REST or WebSocket), on top of the route schemas.
import type { Config } from '../config/index.js';
import { validationError } from '../errors.js';
import { hasControlCharacters } from '../lib/text.js';
import { formatOptionalTimestamp, formatTimestamp } from '../lib/time.js';
import { termsOf } from '../lib/search-terms.js';
import type { ChannelKind } from '../repositories/channels.js';
import {
  messageKey,
  type AttachmentDoc,
  type MessageDoc,
  type ReactionDoc,
} from '../repositories/messages.js';

export const MESSAGE_TYPES = ['text', 'file'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** Reaction names: an emoji or a short code such as "+1" or ":tada:"; no spaces or control characters. */
// eslint-disable-next-line no-control-regex -- the pattern exists to refuse control characters
export const REACTION_PATTERN = /^[^\s\u0000-\u001f\u007f]{1,64}$/u;

/**
 * Trimmed content within the configured length (in characters, so an emoji counts once), without control
 * characters other than newline and tab. Windows line ends (CR LF) become plain newlines.
 */
export function checkContent(raw: string, config: Config, field = 'content'): string {
  const content = raw.replace(/\r\n?/g, '\n').trim();
  const max = config.messages.max_length;
  const length = [...content].length;
  const problem =
    length === 0
      ? 'must not be empty'
      : length > max
        ? `must be at most ${max} characters`
        : hasControlCharacters(content, { allowNewlines: true })
          ? 'must not contain control characters'
          : null;
  if (problem) throw validationError(`${field} ${problem}`, [{ path: field, message: problem }]);
  return content;
}

export function checkReaction(reaction: string, field = 'reaction_type'): string {
  if (!REACTION_PATTERN.test(reaction)) {
    throw validationError(`${field} is not a valid reaction`, [
      { path: field, message: 'must be 1-64 characters without spaces or control characters' },
    ]);
  }
  return reaction;
}

/** What a send decides about a new message before it is numbered. */
export interface NewMessage {
  channelId: string;
  channelKind: ChannelKind;
  recipientId: string | null;
  senderId: string;
  senderName: string;
  content: string;
  messageType: string;
  replyTo: string | null;
  attachments: AttachmentDoc[];
  clientId: string | undefined;
  createdAt: Date;
}

/** The document a new message is stored as, once it has its numbers. */
export function storedMessage(message: NewMessage, seq: number, changeSeq: number): MessageDoc {
  const id = messageKey(message.channelId, seq);
  return {
    _id: id,
    channel_id: message.channelId,
    channel_kind: message.channelKind,
    recipient_id: message.recipientId,
    sender_id: message.senderId,
    sender_name: message.senderName,
    content: message.content,
    message_type: message.messageType,
    seq,
    change_seq: changeSeq,
    reply_to: message.replyTo,
    attachments: message.attachments,
    reactions: [],
    edited_at: null,
    edit_history: [],
    deleted: false,
    deleted_at: null,
    deleted_by: null,
    hidden_for: [],
    terms: termsOf(message.content),
    mentions: [],
    client_id: message.clientId ?? null,
    // Per sender unique: the client_id, or the message's own id, in separate spaces so that a client_id
    // shaped like a message id cannot collide with one.
    client_key: message.clientId !== undefined ? `c:${message.clientId}` : `m:${id}`,
    created_at: message.createdAt,
  };
}

export interface PublicReaction {
  reaction_type: string;
  user_ids: string[];
  count: number;
}

export interface PublicAttachment {
  id: string;
  file_name: string;
  file_type: string;
  file_size: number;
  /** A signed download link; null once the file was deleted. */
  file_url: string | null;
  deleted: boolean;
}

export interface PublicMessage {
  id: string;
  channel_id: string;
  channel_kind: ChannelKind;
  recipient_id: string | null;
  sender_id: string;
  sender_name: string;
  content: string;
  message_type: string;
  seq: number;
  change_seq: number;
  reply_to: string | null;
  attachments: PublicAttachment[];
  reactions: PublicReaction[];
  edited_at: string | null;
  deleted: boolean;
  timestamp: string;
  client_id: string | null;
}

export function publicReactions(reactions: readonly ReactionDoc[]): PublicReaction[] {
  return reactions.map((reaction) => ({
    reaction_type: reaction.reaction_type,
    user_ids: reaction.user_ids,
    count: reaction.user_ids.length,
  }));
}

export function publicMessage(
  message: MessageDoc,
  timezone: string,
  fileUrl: (fileId: string) => string = (fileId) => `/api/v2/files/${fileId}`,
): PublicMessage {
  return {
    id: message._id,
    channel_id: message.channel_id,
    channel_kind: message.channel_kind,
    recipient_id: message.recipient_id,
    sender_id: message.sender_id,
    sender_name: message.sender_name,
    content: message.content,
    message_type: message.message_type,
    seq: message.seq,
    change_seq: message.change_seq,
    reply_to: message.reply_to,
    attachments: message.attachments.map((attachment) => ({
      id: attachment.id,
      file_name: attachment.file_name,
      file_type: attachment.file_type,
      file_size: attachment.file_size,
      file_url: attachment.deleted ? null : fileUrl(attachment.id),
      deleted: attachment.deleted === true,
    })),
    reactions: publicReactions(message.reactions),
    edited_at: formatOptionalTimestamp(message.edited_at, timezone),
    deleted: message.deleted,
    timestamp: formatTimestamp(message.created_at, timezone),
    client_id: message.client_id,
  };
}

/** The reactions after `userId` adds, removes or replaces one; null when nothing changes. */
export function applyReaction(
  reactions: readonly ReactionDoc[],
  userId: string,
  change: { action: 'add' | 'remove' | 'replace'; reaction: string; old?: string },
): ReactionDoc[] | null {
  let next = reactions.map((reaction) => ({ ...reaction, user_ids: [...reaction.user_ids] }));
  const remove = (type: string) => {
    const entry = next.find((reaction) => reaction.reaction_type === type);
    if (!entry || !entry.user_ids.includes(userId)) return false;
    entry.user_ids = entry.user_ids.filter((id) => id !== userId);
    next = next.filter((reaction) => reaction.user_ids.length > 0);
    return true;
  };
  const add = (type: string) => {
    const entry = next.find((reaction) => reaction.reaction_type === type);
    if (entry?.user_ids.includes(userId)) return false;
    if (entry) entry.user_ids.push(userId);
    else next.push({ reaction_type: type, user_ids: [userId] });
    return true;
  };
  let changed = false;
  if (change.action === 'remove') changed = remove(change.reaction);
  else if (change.action === 'add') changed = add(change.reaction);
  else {
    const removed = change.old !== undefined && change.old !== change.reaction && remove(change.old);
    changed = add(change.reaction) || removed;
  }
  return changed ? next : null;
}

/** Up to 300 characters of content for a notification. */
export function excerpt(content: string): string {
  return content.length > 300 ? `${content.slice(0, 299)}…` : content;
}

/** Tokens after "@" in a message: "@alice", "@alice.smith", "@a.b@example.com", "@channel". */
export function mentionTokens(content: string): string[] {
  const tokens = new Set<string>();
  for (const match of content.matchAll(
    /(?:^|[^\p{L}\p{N}_@.])@([\p{L}\p{N}._+-]+(?:@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)+)?)/gu,
  )) {
    const token = match[1]!.replace(/[.\-_]+$/u, '').toLowerCase();
    if (token) tokens.add(token);
    if (tokens.size >= 50) break;
  }
  return [...tokens];
}

export const CHANNEL_WIDE_MENTIONS = new Set(['channel', 'here', 'all', 'everyone']);
