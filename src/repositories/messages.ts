// MongoDB access for messages. Numbers are handed out by unique keys, not counters: a new message's id is
// "<channel_id>-<seq>", so inserting it claims its seq, and every change claims its `change_seq` under
// the unique index (channel_id, change_seq). FerretDB (SQLite) does not isolate `$inc` or conditional
// updates between concurrent writers, but it does enforce unique keys, so a collision tells the writer
// to take the next number. The service serializes writers per channel inside one process.
//
// FerretDB 1.x (SQLite) uses no index except for a filter that is exactly `{_id: <string>}`; any other
// query decodes every document of the collection. Where the engine is FerretDB (`pointLookups`), the
// hot paths here read by id (history by seq is a set of id lookups); on MongoDB they use the indexes.
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
  /** The file was deleted after it was shared: listed, but no longer downloadable. */
  deleted?: boolean;
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

/** A message's id: its channel and seq, so that it can be found by seq with an id lookup. */
export function messageKey(channelId: string, seq: number): string {
  return `${channelId}-${seq}`;
}

/** The message id pattern (for validation at the edge). */
export const MESSAGE_ID_PATTERN = /^[0-9a-f]{24}-[1-9][0-9]{0,15}$/;

interface ClientIdDoc {
  /** "<sender_id>:<client_id>" */
  _id: string;
  message_id: string;
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
  /** The last message of the previous page (newest first). */
  beforeCursor?: { createdAt: Date; id: string };
  viewerId: string;
  limit: number;
}

export class MessagesRepository {
  private readonly messages: Collection<MessageDoc>;
  private readonly clientIds: Collection<ClientIdDoc>;

  constructor(
    db: Db,
    /** True where only id lookups are indexed (FerretDB): read by id instead of by range. */
    private readonly pointLookups: () => boolean = () => false,
  ) {
    this.messages = db.collection<MessageDoc>(COLLECTIONS.messages);
    this.clientIds = db.collection<ClientIdDoc>(COLLECTIONS.messageClientIds);
  }

  /** Inserts; throws a duplicate-key error when the seq, change_seq or client key is taken. */
  insert(message: MessageDoc): Promise<unknown> {
    return this.messages.insertOne(message);
  }

  findById(id: string): Promise<MessageDoc | null> {
    return this.messages.findOne({ _id: id });
  }

  /** Slow on FerretDB (not an id lookup): only for the rare collision path; see findIdByClientId. */
  findByClientKey(senderId: string, clientKey: string): Promise<MessageDoc | null> {
    return this.messages.findOne({ sender_id: senderId, client_key: clientKey });
  }

  /** The message a sender's client_id produced, from the id-keyed record written after each send. */
  async findIdByClientId(senderId: string, clientId: string): Promise<string | null> {
    return (await this.clientIds.findOne({ _id: `${senderId}:${clientId}` }))?.message_id ?? null;
  }

  /** Remembers which message a client_id produced (a second write of the same pair is a no-op). */
  async rememberClientId(senderId: string, clientId: string, messageId: string, at: Date): Promise<void> {
    await this.clientIds.updateOne(
      { _id: `${senderId}:${clientId}` },
      { $setOnInsert: { message_id: messageId, created_at: at } },
      { upsert: true },
    );
  }

  /** Forgets client_id records older than `before` (a retry after that still finds its message, slower). */
  async forgetClientIdsBefore(before: Date): Promise<number> {
    return (await this.clientIds.deleteMany({ created_at: { $lt: before } })).deletedCount;
  }

  /** Messages with seq from..to of a channel, in seq order (missing ones are left out). */
  async bySeqRange(channelId: string, from: number, to: number): Promise<MessageDoc[]> {
    if (to < from) return [];
    if (!this.pointLookups()) {
      return this.messages
        .find({ channel_id: channelId, seq: { $gte: from, $lte: to } })
        .sort({ channel_id: 1, seq: 1 })
        .toArray();
    }
    const seqs = Array.from({ length: to - from + 1 }, (_, index) => from + index);
    const docs = await Promise.all(
      seqs.map((seq) => this.messages.findOne({ _id: messageKey(channelId, seq) })),
    );
    return docs.filter((doc): doc is MessageDoc => doc !== null);
  }

  /** The channel's highest change position among its messages (0 without any). Slow on FerretDB. */
  async maxChangeSeq(channelId: string): Promise<number> {
    const top = await this.messages
      .find({ channel_id: channelId }, { projection: { change_seq: 1 } })
      .sort({ channel_id: 1, change_seq: -1 })
      .limit(1)
      .next();
    return top?.change_seq ?? 0;
  }

  /**
   * Applies a change to a message if it is still at `expectedChangeSeq`, stamping it with `changeSeq`.
   * Returns the message after the change, or null when someone changed it first (re-read and retry).
   * Throws a duplicate-key error when `changeSeq` is taken. On FerretDB the version check is left out
   * (it would not be isolated anyway, and any filter but the id decodes the whole collection): there,
   * writers of a channel take turns within the process.
   */
  restamp(
    id: string,
    expectedChangeSeq: number,
    changeSeq: number,
    set: Partial<MessageDoc>,
  ): Promise<MessageDoc | null> {
    const filter = this.pointLookups() ? { _id: id } : { _id: id, change_seq: expectedChangeSeq };
    return this.messages.findOneAndUpdate(
      filter,
      { $set: { ...set, change_seq: changeSeq } },
      { returnDocument: 'after' },
    );
  }

  hideFor(id: string, userId: string): Promise<unknown> {
    return this.messages.updateOne({ _id: id }, { $addToSet: { hidden_for: userId } });
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
    if (query.beforeCursor) {
      const { createdAt, id } = query.beforeCursor;
      and.push({ $or: [{ created_at: { $lt: createdAt } }, { created_at: createdAt, _id: { $lt: id } }] });
    }
    return this.messages.find({ $and: and }).sort({ created_at: -1, _id: -1 }).limit(query.limit).toArray();
  }
}
