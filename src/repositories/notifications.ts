// MongoDB access for stored notifications (mentions). Plain objects in, plain objects out.
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export interface NotificationDoc {
  _id: string;
  user_id: string;
  kind: 'mention';
  channel_id: string;
  message_id: string;
  seq: number;
  from_user_id: string;
  from_name: string;
  excerpt: string;
  created_at: Date;
  read_at: Date | null;
}

export class NotificationsRepository {
  private readonly notifications: Collection<NotificationDoc>;

  constructor(db: Db) {
    this.notifications = db.collection<NotificationDoc>(COLLECTIONS.notifications);
  }

  async insertMany(docs: readonly NotificationDoc[]): Promise<void> {
    if (docs.length) await this.notifications.insertMany([...docs], { ordered: false });
  }

  list(
    userId: string,
    options: { beforeId?: string; unreadOnly: boolean; limit: number },
  ): Promise<NotificationDoc[]> {
    return this.notifications
      .find({
        user_id: userId,
        ...(options.beforeId ? { _id: { $lt: options.beforeId } } : {}),
        ...(options.unreadOnly ? { read_at: null } : {}),
      })
      .sort({ user_id: 1, _id: -1 })
      .limit(options.limit)
      .toArray();
  }

  countUnread(userId: string): Promise<number> {
    return this.notifications.countDocuments({ user_id: userId, read_at: null });
  }

  updateExcerpts(messageId: string, excerpt: string): Promise<unknown> {
    return this.notifications.updateMany({ message_id: messageId }, { $set: { excerpt } });
  }

  /** Removes the notifications a message left (it was deleted for everyone: its text must go too). */
  async deleteForMessage(messageId: string): Promise<number> {
    return (await this.notifications.deleteMany({ message_id: messageId })).deletedCount;
  }

  /** Marks the user's notifications read: the listed ones, or all. Returns how many changed. */
  async markRead(userId: string, ids: readonly string[] | null, at: Date): Promise<number> {
    const result = await this.notifications.updateMany(
      { user_id: userId, read_at: null, ...(ids ? { _id: { $in: [...ids] } } : {}) },
      { $set: { read_at: at } },
    );
    return result.modifiedCount;
  }
}
