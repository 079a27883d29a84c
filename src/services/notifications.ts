// Mentions and the notifications they leave: "@name", "@email" and "@channel" in a message resolve to
// members of its channel; each one (not the sender) gets a stored notification and a `notification`
// event. People who are not members are never notified (that would leak the message).
import type { Actor } from '../auth/permissions.js';
import type { Config } from '../config/index.js';
import { invalidCursor } from '../errors.js';
import { isId, newId } from '../lib/ids.js';
import { pageOf } from '../lib/paging.js';
import { words } from '../lib/search-terms.js';
import { formatOptionalTimestamp, formatTimestamp } from '../lib/time.js';
import type { ChannelDoc, ChannelsRepository } from '../repositories/channels.js';
import type { MessageDoc } from '../repositories/messages.js';
import type { NotificationDoc, NotificationsRepository } from '../repositories/notifications.js';
import type { UserDoc, UsersRepository } from '../repositories/users.js';
import type { EventPublisher } from './events.js';
import { CHANNEL_WIDE_MENTIONS, excerpt, mentionTokens } from './message-content.js';

export interface PublicNotification {
  id: string;
  kind: 'mention';
  channel_id: string;
  message_id: string;
  seq: number;
  from_user_id: string;
  from_name: string;
  excerpt: string;
  created_at: string;
  read_at: string | null;
}

/** Whether `token` (after "@") names this user: their email, its local part, or their name run together. */
function mentionMatches(user: UserDoc, token: string): boolean {
  if (token.includes('@')) return user.email_lower === token;
  const local = user.email_lower.split('@')[0];
  const nameWords = words(user.name);
  const compact = token.replace(/[._-]/g, '');
  return (
    local === token ||
    nameWords.join('') === compact ||
    nameWords.join('.') === token ||
    nameWords[0] === token
  );
}

export class NotificationsService {
  constructor(
    private readonly deps: {
      notifications: NotificationsRepository;
      channels: ChannelsRepository;
      users: UsersRepository;
      events: EventPublisher;
      config: Config;
    },
  ) {}

  toPublic(doc: NotificationDoc): PublicNotification {
    const tz = this.deps.config.server.timezone;
    return {
      id: doc._id,
      kind: doc.kind,
      channel_id: doc.channel_id,
      message_id: doc.message_id,
      seq: doc.seq,
      from_user_id: doc.from_user_id,
      from_name: doc.from_name,
      excerpt: doc.excerpt,
      created_at: formatTimestamp(doc.created_at, tz),
      read_at: formatOptionalTimestamp(doc.read_at, tz),
    };
  }

  /** The channel members a message mentions, without its sender. */
  async mentionedMembers(message: MessageDoc, channel: ChannelDoc): Promise<string[]> {
    const tokens = mentionTokens(message.content);
    if (tokens.length === 0) return [];
    let ids: string[];
    if (tokens.some((token) => CHANNEL_WIDE_MENTIONS.has(token))) {
      ids = await this.deps.channels.memberIds(channel._id);
    } else {
      const emails = tokens.filter((token) => token.includes('@'));
      const searchWords = [...new Set(tokens.flatMap((token) => [token, ...words(token)]))];
      const candidates = await this.deps.users.mentionCandidates(emails, searchWords, 200);
      const named = candidates.filter((user) => tokens.some((token) => mentionMatches(user, token)));
      const memberships = await Promise.all(
        named.map((user) => this.deps.channels.findMembership(channel._id, user._id)),
      );
      ids = named.filter((_, index) => memberships[index]).map((user) => user._id);
    }
    return [...new Set(ids)].filter((id) => id !== message.sender_id);
  }

  /**
   * Stores a notification for each mentioned member and tells each of them, unless `stillLive` says the
   * message was deleted meanwhile (then the stored ones are removed again).
   */
  async notifyMentions(
    message: MessageDoc,
    channel: ChannelDoc,
    stillLive: () => Promise<boolean> = async () => true,
  ): Promise<string[]> {
    const userIds = await this.mentionedMembers(message, channel);
    if (userIds.length === 0) return [];
    const docs: NotificationDoc[] = userIds.map((userId) => ({
      _id: newId(),
      user_id: userId,
      kind: 'mention',
      channel_id: channel._id,
      message_id: message._id,
      seq: message.seq,
      from_user_id: message.sender_id,
      from_name: message.sender_name,
      excerpt: excerpt(message.content),
      created_at: message.created_at,
      read_at: null,
    }));
    await this.deps.notifications.insertMany(docs);
    if (!(await stillLive())) {
      await this.deps.notifications.deleteForMessage(message._id);
      return [];
    }
    for (const doc of docs) {
      this.deps.events.publish(
        { type: 'notification', notification: this.toPublic(doc) },
        { kind: 'users', userIds: [doc.user_id] },
      );
    }
    return userIds;
  }

  /** An edited message's notifications show its new text. */
  async refreshExcerpts(message: MessageDoc): Promise<void> {
    await this.deps.notifications.updateExcerpts(message._id, excerpt(message.content));
  }

  /** A message deleted for everyone takes its excerpts out of the notifications it left. */
  async forgetMessage(messageId: string): Promise<void> {
    await this.deps.notifications.deleteForMessage(messageId);
  }

  async list(
    actor: Actor,
    query: { cursor?: string; unread_only: boolean; limit: number },
  ): Promise<{
    notifications: PublicNotification[];
    unread_count: number;
    next_cursor: string | null;
    has_more: boolean;
  }> {
    if (query.cursor !== undefined && !isId(query.cursor)) {
      throw invalidCursor();
    }
    const [page, unread] = await Promise.all([
      this.deps.notifications.list(actor.id, {
        beforeId: query.cursor,
        unreadOnly: query.unread_only,
        limit: query.limit + 1,
      }),
      this.deps.notifications.countUnread(actor.id),
    ]);
    const { rows, ...paging } = pageOf(page, query.limit, (last) => last._id);
    return { notifications: rows.map((doc) => this.toPublic(doc)), unread_count: unread, ...paging };
  }

  /** Marks the caller's notifications read: the listed ones, or all of them. */
  async markRead(actor: Actor, ids: string[] | null): Promise<{ updated: number; unread_count: number }> {
    const updated = await this.deps.notifications.markRead(actor.id, ids, new Date());
    return { updated, unread_count: await this.deps.notifications.countUnread(actor.id) };
  }
}
