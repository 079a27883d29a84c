// MongoDB access for channels and memberships. Plain objects in, plain objects out; no business rules.
import { MongoBulkWriteError, type AnyBulkWriteOperation, type Collection, type Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';
import { KeyedQueue } from '../lib/keyed-queue.js';

export const CHANNEL_KINDS = ['direct', 'group', 'department', 'public'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

export interface ChannelDoc {
  _id: string;
  name: string;
  /** Unique. Direct channels use "dm:<id>:<id>" (sorted ids), so a pair can only ever have one. */
  name_lower: string;
  kind: ChannelKind;
  description: string | null;
  /** Department channels: the department whose members they hold. */
  department: string | null;
  /** Direct channels: the two participants. */
  participants: string[] | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
  /** The highest message seq known to be stored (advanced after each send, so it may trail by a moment). */
  last_seq: number;
  /** The highest change position known to be taken (likewise). Absent on channels from before it existed. */
  last_change_seq?: number;
  last_message_at: Date | null;
}

export type MemberRole = 'owner' | 'member';

export interface MembershipDoc {
  /** "<channel_id>:<user_id>": one membership per pair, and joining twice is a no-op. */
  _id: string;
  channel_id: string;
  user_id: string;
  role: MemberRole;
  last_read_seq: number;
  joined_at: Date;
  muted: boolean;
  hidden: boolean;
}

/**
 * Which channels a user belongs to, by user id: on FerretDB only `_id` lookups use an index, so finding a
 * user's memberships by `user_id` would read every membership. Kept beside the memberships (added and
 * removed with them) and rebuilt from them by `rebuildUserChannels` (the hourly reconcile).
 */
export interface UserChannelsDoc {
  _id: string;
  channel_ids: string[];
}

export function membershipId(channelId: string, userId: string): string {
  return `${channelId}:${userId}`;
}

export class ChannelsRepository {
  private readonly channels: Collection<ChannelDoc>;
  private readonly memberships: Collection<MembershipDoc>;
  private readonly userChannels: Collection<UserChannelsDoc>;
  /** Writes to one user's channel list take turns (FerretDB would let concurrent ones undo each other). */
  private readonly userChannelWrites = new KeyedQueue();

  constructor(
    db: Db,
    /** True where only id lookups are indexed (FerretDB): read by id instead of by filter. */
    private readonly pointLookups: () => boolean = () => false,
  ) {
    this.channels = db.collection<ChannelDoc>(COLLECTIONS.channels);
    this.memberships = db.collection<MembershipDoc>(COLLECTIONS.memberships);
    this.userChannels = db.collection<UserChannelsDoc>(COLLECTIONS.userChannels);
  }

  insert(channel: ChannelDoc): Promise<unknown> {
    return this.channels.insertOne(channel);
  }

  /** Undoes a channel that could not be completed (it never held messages). */
  async deleteWithMembers(id: string): Promise<void> {
    const members = await this.memberIds(id);
    await this.memberships.deleteMany({ channel_id: id });
    await Promise.all(members.map((userId) => this.listChannel(userId, id, false)));
    await this.channels.deleteOne({ _id: id });
  }

  findById(id: string): Promise<ChannelDoc | null> {
    return this.channels.findOne({ _id: id });
  }

  findByName(name: string): Promise<ChannelDoc | null> {
    return this.channels.findOne({ name_lower: name.toLowerCase() });
  }

  async findByIds(ids: readonly string[]): Promise<ChannelDoc[]> {
    if (!this.pointLookups()) return this.channels.find({ _id: { $in: [...ids] } }).toArray();
    const docs = await Promise.all(ids.map((id) => this.channels.findOne({ _id: id })));
    return docs.filter((doc): doc is ChannelDoc => doc !== null);
  }

  findDepartmentChannel(department: string): Promise<ChannelDoc | null> {
    return this.channels.findOne({ kind: 'department', department });
  }

  listPublic(limit: number, afterName?: string): Promise<ChannelDoc[]> {
    return this.channels
      .find({
        kind: 'public',
        archived_at: null,
        ...(afterName !== undefined ? { name_lower: { $gt: afterName } } : {}),
      })
      .sort({ name_lower: 1 })
      .limit(limit)
      .toArray();
  }

  update(id: string, set: Partial<ChannelDoc>): Promise<ChannelDoc | null> {
    return this.channels.findOneAndUpdate({ _id: id }, { $set: set }, { returnDocument: 'after' });
  }

  // The filters below are the id alone: on FerretDB anything more decodes the whole collection.

  /**
   * Moves last_seq and last_change_seq forward to the given values, never back; a new last_seq also
   * sets the time of the last message.
   */
  advanceMarks(
    id: string,
    marks: { last_seq?: number; last_change_seq?: number },
    at: Date,
  ): Promise<unknown> {
    const max: Record<string, number | Date> = { ...marks };
    if (marks.last_seq !== undefined) max.last_message_at = at;
    return this.channels.updateOne({ _id: id }, { $max: max });
  }

  // ---- memberships ----

  findMembership(channelId: string, userId: string): Promise<MembershipDoc | null> {
    return this.memberships.findOne({ _id: membershipId(channelId, userId) });
  }

  async membershipsOfUser(userId: string): Promise<MembershipDoc[]> {
    if (!this.pointLookups()) return this.memberships.find({ user_id: userId }).toArray();
    // By the user's channel list, one id lookup per membership (a filter on user_id would read them all).
    const channelIds = await this.channelIdsOfUser(userId);
    const docs = await Promise.all(channelIds.map((channelId) => this.findMembership(channelId, userId)));
    return docs.filter((doc): doc is MembershipDoc => doc !== null);
  }

  /** The channel ids a user belongs to (search scoping, the realtime hub), by the user's channel list. */
  async channelIdsOfUser(userId: string): Promise<string[]> {
    const listed = await this.userChannels.findOne({ _id: userId });
    if (listed) return listed.channel_ids;
    // No list yet (data from before it existed): read the memberships once and write the list.
    const docs = await this.memberships
      .find({ user_id: userId }, { projection: { channel_id: 1 } })
      .toArray();
    const ids = docs.map((doc) => doc.channel_id);
    await this.userChannelWrites.run(userId, () =>
      this.userChannels.updateOne(
        { _id: userId },
        { $addToSet: { channel_ids: { $each: ids } } },
        { upsert: true },
      ),
    );
    return ids;
  }

  /** Adds or removes a channel on the user's channel list. */
  private listChannel(userId: string, channelId: string, member: boolean): Promise<unknown> {
    return this.userChannelWrites.run(userId, () =>
      this.userChannels.updateOne(
        { _id: userId },
        member ? { $addToSet: { channel_ids: channelId } } : { $pull: { channel_ids: channelId } },
        { upsert: member },
      ),
    );
  }

  /**
   * Makes every user's channel list match the memberships (after a crash between the two writes);
   * returns how many lists were corrected. Each difference is checked again by id just before it is
   * written, so a membership added or removed meanwhile is not undone.
   */
  async rebuildUserChannels(): Promise<number> {
    const expected = new Map<string, Set<string>>();
    const memberships = this.memberships.find({}, { projection: { channel_id: 1, user_id: 1 } });
    for await (const { user_id: userId, channel_id: channelId } of memberships) {
      let ids = expected.get(userId);
      if (!ids) expected.set(userId, (ids = new Set()));
      ids.add(channelId);
    }
    const listed = new Map<string, Set<string>>();
    for await (const doc of this.userChannels.find({})) listed.set(doc._id, new Set(doc.channel_ids));
    let corrected = 0;
    for (const userId of new Set([...expected.keys(), ...listed.keys()])) {
      const want = expected.get(userId) ?? new Set<string>();
      const have = listed.get(userId) ?? new Set<string>();
      const differences = [
        ...[...want].filter((id) => !have.has(id)),
        ...[...have].filter((id) => !want.has(id)),
      ];
      if (differences.length === 0) continue;
      corrected += 1;
      for (const channelId of differences) {
        const member = (await this.findMembership(channelId, userId)) !== null;
        await this.listChannel(userId, channelId, member);
      }
    }
    return corrected;
  }

  members(channelId: string, limit: number, afterUserId?: string): Promise<MembershipDoc[]> {
    return this.memberships
      .find({ channel_id: channelId, ...(afterUserId ? { user_id: { $gt: afterUserId } } : {}) })
      .sort({ channel_id: 1, user_id: 1 })
      .limit(limit)
      .toArray();
  }

  async memberIds(channelId: string): Promise<string[]> {
    const docs = await this.memberships
      .find({ channel_id: channelId }, { projection: { user_id: 1 } })
      .toArray();
    return docs.map((doc) => doc.user_id);
  }

  /** The member ids of several channels in one query (reconciling every department at once). */
  async memberIdsByChannel(channelIds: readonly string[]): Promise<Map<string, string[]>> {
    const byChannel = new Map<string, string[]>(channelIds.map((id) => [id, []]));
    const docs = await this.memberships
      .find({ channel_id: { $in: [...channelIds] } }, { projection: { channel_id: 1, user_id: 1 } })
      .toArray();
    for (const doc of docs) byChannel.get(doc.channel_id)?.push(doc.user_id);
    return byChannel;
  }

  countMembers(channelId: string): Promise<number> {
    return this.memberships.countDocuments({ channel_id: channelId });
  }

  /** Adds memberships that do not exist yet (existing ones stay as they are); returns the users added. */
  async addMembers(memberships: readonly MembershipDoc[]): Promise<string[]> {
    if (memberships.length === 0) return [];
    const operations: AnyBulkWriteOperation<MembershipDoc>[] = memberships.map((membership) => ({
      updateOne: { filter: { _id: membership._id }, update: { $setOnInsert: membership }, upsert: true },
    }));
    const added = (upsertedIds: Record<number, unknown>) =>
      Object.keys(upsertedIds).map((index) => memberships[Number(index)]!.user_id);
    let addedIds: string[];
    try {
      addedIds = added((await this.memberships.bulkWrite(operations, { ordered: false })).upsertedIds);
    } catch (error) {
      // Two requests adding the same member at once: on FerretDB the slower upsert fails on the unique
      // id instead of matching. Either way the member is in, which is what was asked.
      const writeErrors = (error as { writeErrors?: { code?: number }[] }).writeErrors;
      if (
        !(error instanceof MongoBulkWriteError) ||
        !writeErrors?.every((writeError) => writeError.code === 11000)
      ) {
        throw error;
      }
      addedIds = added(error.result.upsertedIds);
    }
    // Every listed member's channel list gets the channel, not only the new ones: this heals a list that
    // missed it (the write is a no-op when it is there).
    await Promise.all(
      memberships.map((membership) => this.listChannel(membership.user_id, membership.channel_id, true)),
    );
    return addedIds;
  }

  async removeMember(channelId: string, userId: string): Promise<boolean> {
    // The list first: if the second write fails, the user is refused rather than kept (the reconcile
    // puts a still-existing membership back on the list).
    await this.listChannel(userId, channelId, false);
    const result = await this.memberships.deleteOne({ _id: membershipId(channelId, userId) });
    return result.deletedCount === 1;
  }

  /** Moves last_read_seq forward to `seq` (never back). */
  advanceReadSeq(channelId: string, userId: string, seq: number): Promise<unknown> {
    return this.memberships.updateOne(
      { _id: membershipId(channelId, userId) },
      { $max: { last_read_seq: seq } },
    );
  }

  updateMembership(
    channelId: string,
    userId: string,
    set: Partial<MembershipDoc>,
  ): Promise<MembershipDoc | null> {
    return this.memberships.findOneAndUpdate(
      { _id: membershipId(channelId, userId) },
      { $set: set },
      { returnDocument: 'after' },
    );
  }
}
