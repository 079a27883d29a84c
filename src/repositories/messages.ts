// MongoDB access for messages. Numbers are handed out by unique indexes, not counters: a new message's
// `seq` and every mutation's `change_seq` are claimed by writing them under the unique keys
// (channel_id, seq) and (channel_id, change_seq). FerretDB (SQLite) does not isolate `$inc` or
// conditional updates between concurrent writers, but it does enforce unique keys, so a collision tells
// the writer to take the next number. The service serializes writers per channel inside one process.
import type { Collection, Db, Filter } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';
import { escapeRegex } from '../lib/search-terms.js';
import type { ChannelKind } from './channels.js';

export interface ReactionDoc {
  reaction_type: string;
  user_ids: string[];
}

export interface AttachmentDoc {
  id: string;
  file_name: string;
  file_type: string;
  file_size: number;
}

export interface EditDoc {
  content: string;
  edited_at: Date;
}

export interface MessageDoc {
  _id: string;
  channel_id: string;
  channel_kind: ChannelKind;
  /** Direct channels: the participant who is not the sender. */
  recipient_id: string | null;
  sender_id: string;
  sender_name: string;
  content: string;
  message_type: string;
  /** Position among the channel's messages: strictly increasing and gap-free. */
  seq: number;
  /** Position of this message's latest change (creation, edit, delete, reaction) among the channel's changes. */
  change_seq: number;
  reply_to: string | null;
  attachments: AttachmentDoc[];
  reactions: ReactionDoc[];
  edited_at: Date | null;
  /** The previous versions, newest last, bounded. */
  edit_history: EditDoc[];
  deleted: boolean;
  deleted_at: Date | null;
  deleted_by: string | null;
  /** Users who hid this message for themselves. */
  hidden_for: string[];
  /** Search keys of the content (lib/search-terms.ts). */
  terms: string[];
  mentions: string[];
  client_id: string | null;
  /** client_id, or the message id when there is none: unique per sender. */
  client_key: string;
  created_at: Date;
}

export interface SearchQuery {
  channelIds: string[];
  /** Every one must be a word of the message. */
  words: string[];
  /** The last word typed: a prefix of a word. */
  prefix: string | null;
  senderId?: string;
  before?: Date;
  after?: Date;
  /** The last message id of the previous page (newest first). */
  beforeId?: string;
  viewerId: string;
  limit: number;
}

export class MessagesRepository {
  private readonly messages: Collection<MessageDoc>;

  constructor(db: Db) {
    this.messages = db.collection<MessageDoc>(COLLECTIONS.messages);
  }

  /** Inserts; throws a duplicate-key error when the seq, change_seq or client key is taken. */
  insert(message: MessageDoc): Promise<unknown> {
    return this.messages.insertOne(message);
  }

  findById(id: string): Promise<MessageDoc | null> {
    return this.messages.findOne({ _id: id });
  }

  findByClientKey(senderId: string, clientKey: string): Promise<MessageDoc | null> {
    return this.messages.findOne({ sender_id: senderId, client_key: clientKey });
  }

  /** The channel's highest message seq and change position (0 when it has none). */
  async highWaterMarks(channelId: string): Promise<{ seq: number; changeSeq: number }> {
    const [bySeq, byChange] = await Promise.all([
      this.messages
        .find({ channel_id: channelId }, { projection: { seq: 1 } })
        .sort({ channel_id: 1, seq: -1 })
        .limit(1)
        .next(),
      this.messages
        .find({ channel_id: channelId }, { projection: { change_seq: 1 } })
        .sort({ channel_id: 1, change_seq: -1 })
        .limit(1)
        .next(),
    ]);
    return { seq: bySeq?.seq ?? 0, changeSeq: byChange?.change_seq ?? 0 };
  }

  /**
   * Applies a change to a message if it is still at `expectedChangeSeq`, stamping it with `changeSeq`.
   * Returns the message after the change, or null when someone changed it first (re-read and retry).
   * Throws a duplicate-key error when `changeSeq` is taken.
   */
  restamp(
    id: string,
    expectedChangeSeq: number,
    changeSeq: number,
    set: Partial<MessageDoc>,
  ): Promise<MessageDoc | null> {
    return this.messages.findOneAndUpdate(
      { _id: id, change_seq: expectedChangeSeq },
      { $set: { ...set, change_seq: changeSeq } },
      { returnDocument: 'after' },
    );
  }

  hideFor(id: string, userId: string): Promise<unknown> {
    return this.messages.updateOne({ _id: id }, { $addToSet: { hidden_for: userId } });
  }

  /** Messages by seq: after `afterSeq` ascending, or before `beforeSeq` (newest first, caller reverses). */
  page(
    channelId: string,
    viewerId: string,
    range: { afterSeq?: number; beforeSeq?: number },
    limit: number,
  ): Promise<MessageDoc[]> {
    const seq: Record<string, number> = {};
    if (range.afterSeq !== undefined) seq.$gt = range.afterSeq;
    if (range.beforeSeq !== undefined) seq.$lt = range.beforeSeq;
    const ascending = range.afterSeq !== undefined && range.beforeSeq === undefined;
    return this.messages
      .find({
        channel_id: channelId,
        ...(Object.keys(seq).length ? { seq } : {}),
        hidden_for: { $ne: viewerId },
      })
      .sort({ channel_id: 1, seq: ascending ? 1 : -1 })
      .limit(limit)
      .toArray();
  }

  /** Messages changed after position `sinceChangeSeq`, in change order. */
  changes(channelId: string, viewerId: string, sinceChangeSeq: number, limit: number): Promise<MessageDoc[]> {
    return this.messages
      .find({ channel_id: channelId, change_seq: { $gt: sinceChangeSeq }, hidden_for: { $ne: viewerId } })
      .sort({ channel_id: 1, change_seq: 1 })
      .limit(limit)
      .toArray();
  }

  search(query: SearchQuery): Promise<MessageDoc[]> {
    const and: Filter<MessageDoc>[] = [
      { channel_id: { $in: query.channelIds } },
      { deleted: false },
      { hidden_for: { $ne: query.viewerId } },
    ];
    if (query.words.length) and.push({ terms: { $all: query.words } });
    if (query.prefix) and.push({ terms: { $regex: `^${escapeRegex(query.prefix)}` } });
    if (query.senderId) and.push({ sender_id: query.senderId });
    if (query.before) and.push({ created_at: { $lt: query.before } });
    if (query.after) and.push({ created_at: { $gt: query.after } });
    if (query.beforeId) and.push({ _id: { $lt: query.beforeId } });
    return this.messages.find({ $and: and }).sort({ _id: -1 }).limit(query.limit).toArray();
  }
}
