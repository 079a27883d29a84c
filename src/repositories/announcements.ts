// MongoDB access for announcements. Plain objects in, plain objects out.
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export type AnnouncementPriority = 'high' | 'medium' | 'low';

export interface AnnouncementDoc {
  _id: string;
  title: string;
  content: string;
  priority: AnnouncementPriority;
  created_by: string;
  created_at: Date;
  /** When it should go out, as the admin asked; null: at once. */
  scheduled_at: Date | null;
  /** When the scheduler publishes it if nobody has: scheduled_at, or the creation time. */
  due_at: Date;
  /** When it went out; null while it waits for its time. */
  published_at: Date | null;
  deleted_at: Date | null;
}

export class AnnouncementsRepository {
  private readonly announcements: Collection<AnnouncementDoc>;

  constructor(db: Db) {
    this.announcements = db.collection<AnnouncementDoc>(COLLECTIONS.announcements);
  }

  insert(doc: AnnouncementDoc): Promise<unknown> {
    return this.announcements.insertOne(doc);
  }

  findById(id: string): Promise<AnnouncementDoc | null> {
    return this.announcements.findOne({ _id: id, deleted_at: null });
  }

  /** Newest first; `includeScheduled` also lists those not yet published (admins). */
  list(options: { includeScheduled: boolean; beforeId?: string; limit: number }): Promise<AnnouncementDoc[]> {
    return this.announcements
      .find({
        deleted_at: null,
        ...(options.includeScheduled ? {} : { published_at: { $ne: null } }),
        ...(options.beforeId ? { _id: { $lt: options.beforeId } } : {}),
      })
      .sort({ _id: -1 })
      .limit(options.limit)
      .toArray();
  }

  /** Scheduled announcements whose time has come and that have not been published. */
  due(now: Date, limit: number): Promise<AnnouncementDoc[]> {
    return this.announcements
      .find({ published_at: null, deleted_at: null, due_at: { $lte: now } })
      .sort({ due_at: 1 })
      .limit(limit)
      .toArray();
  }

  /** Marks published unless it was deleted meanwhile (then null). */
  markPublished(id: string, at: Date): Promise<AnnouncementDoc | null> {
    return this.announcements.findOneAndUpdate(
      { _id: id, deleted_at: null },
      { $set: { published_at: at } },
      { returnDocument: 'after' },
    );
  }

  markDeleted(id: string, at: Date): Promise<AnnouncementDoc | null> {
    return this.announcements.findOneAndUpdate(
      { _id: id, deleted_at: null },
      { $set: { deleted_at: at } },
      { returnDocument: 'after' },
    );
  }
}
