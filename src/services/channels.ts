// Channels and memberships: the four kinds and who may see, join and manage each, read positions and
// unread counts, and the channels whose membership the server keeps in sync (direct pairs, `general`,
// and one channel per department).
//
// Visibility: a member sees a channel; anyone sees a public one; moderators and admins also see group and
// department channels (to manage them). Direct channels are seen by their two participants only. A channel
// a caller cannot see answers 404, exactly as one that does not exist.
import { EventEmitter } from 'node:events';
import { assertCan, can, type Actor } from '../auth/permissions.js';
import type { Config } from '../config/index.js';
import { isDuplicateKey } from '../db/errors.js';
import { Errors, invalidCursor, validationError } from '../errors.js';
import { isId, newId } from '../lib/ids.js';
import { KeyedQueue } from '../lib/keyed-queue.js';
import { MonotonicWriter } from '../lib/monotonic-writer.js';
import { pageOf } from '../lib/paging.js';
import { words } from '../lib/search-terms.js';
import { formatOptionalTimestamp, formatTimestamp } from '../lib/time.js';
import {
  membershipId,
  type ChannelDoc,
  type ChannelKind,
  type ChannelsRepository,
  type MemberRole,
  type MembershipDoc,
} from '../repositories/channels.js';
import type { UserDoc, UsersRepository } from '../repositories/users.js';
import type { AuditService } from './audit.js';
import { SYSTEM_ACTOR, type RequestContext } from './context.js';
import type { EventPublisher } from './events.js';
import type { UserChangeEvent } from './users.js';

export const GENERAL_CHANNEL = 'general';

/**
 * A send moves its channel's counters and the sender's read position in the background, at most this
 * long after the message is stored, so a busy channel costs one write per send, not three. Until then
 * this process answers from what it knows; after a crash the numbering is recovered from the messages
 * themselves (their ids are "<channel>-<seq>"), and only a sender's read mark can be lost.
 */
const WRITE_BEHIND_MS = 1_000;

/**
 * Sends check "is the caller a member of this open channel" through a cache of successful checks this
 * old at most. Removing a member, archiving or renaming clears it at once in this process; another
 * process's change takes effect within this time (as a revoked session does).
 */
const SEND_ACCESS_CACHE_MS = 1_000;
const SEND_ACCESS_CACHE_SIZE = 10_000;

/** Channels whose membership only the server changes. */
function isManaged(channel: ChannelDoc): boolean {
  return channel.kind === 'direct' || channel.kind === 'department' || channel.name_lower === GENERAL_CHANNEL;
}

export interface PublicChannel {
  id: string;
  name: string;
  kind: ChannelKind;
  description: string | null;
  department: string | null;
  participants: string[] | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  archived: boolean;
  archived_at: string | null;
  last_seq: number;
  last_message_at: string | null;
  unread_count: number;
  membership: {
    role: MemberRole;
    last_read_seq: number;
    joined_at: string;
    muted: boolean;
    hidden: boolean;
  } | null;
  member_count?: number;
}

export interface NewChannel {
  name?: string;
  kind: ChannelKind;
  members?: string[];
  description?: string | null;
  department?: string;
}

export interface ChannelAccess {
  channel: ChannelDoc;
  membership: MembershipDoc | null;
}

/** Told to the realtime hub so its membership cache stays correct without reading the database. */
export interface MembershipChange {
  channelId: string;
  userIds: string[];
  change: 'added' | 'removed';
}

/** The one direct channel of a pair, whoever wrote first. */
function directChannelName(userId: string, otherId: string): string {
  const pair = [userId, otherId].sort();
  return `dm:${pair[0]}:${pair[1]}`;
}

export class ChannelsService {
  readonly events = new EventEmitter<{ 'membership.changed': [MembershipChange] }>();
  /** Writes a channel's last_seq and members' read positions: one at a time per key, never backwards. */
  /**
   * Writes to a channel's record take turns (FerretDB would let concurrent updates of one document undo
   * each other): numbering, renames and archiving alike.
   */
  private readonly channelDocTurns = new KeyedQueue();
  /** Likewise for a membership: read marks and preferences. */
  private readonly membershipTurns = new KeyedQueue();
  /** Writes a channel's last_seq and last_change_seq, coalescing concurrent sends. */
  private readonly channelWriter: MonotonicWriter;
  private readonly readWriter: MonotonicWriter;
  /** The highest seq this process has stored per channel (the channel record trails it by a write). */
  private latestSeqSeen: (channelId: string) => number = () => 0;
  /** The channel's last seq, looking beyond the record by message id (set by the messages service). */
  private probeLastSeq: (channel: ChannelDoc) => Promise<number> = async (channel) => channel.last_seq;

  constructor(
    private readonly deps: {
      channels: ChannelsRepository;
      users: UsersRepository;
      audit: AuditService;
      events: EventPublisher;
      config: Config;
      log: { warn(object: object, message: string): void };
      now?: () => Date;
    },
  ) {
    this.channelWriter = new MonotonicWriter(
      (channelId, marks) =>
        this.channelDocTurns.run(channelId, () => deps.channels.advanceMarks(channelId, marks, this.now())),
      { delayMs: WRITE_BEHIND_MS },
    );
    this.readWriter = new MonotonicWriter(
      (key, marks) => {
        const [channelId, userId] = key.split(':') as [string, string];
        return this.membershipTurns.run(key, () =>
          deps.channels.advanceReadSeq(channelId, userId, marks.last_read_seq!),
        );
      },
      { delayMs: WRITE_BEHIND_MS },
    );
    this.events.on('membership.changed', (change) => {
      if (change.change === 'removed') this.forgetSendAccess();
    });
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  private readonly sendAccess = new Map<
    string,
    { access: ChannelAccess & { membership: MembershipDoc }; at: number }
  >();
  /** Checks running now, shared by the sends that wait for them. */
  private readonly sendAccessChecks = new Map<
    string,
    Promise<ChannelAccess & { membership: MembershipDoc }>
  >();
  /** Moves on every removal: a check that began before one is not kept (its answer may be stale). */
  private sendAccessGeneration = 0;
  private readonly memberChannels = new Map<string, { channel: ChannelDoc; at: number }>();

  /** The messages service tells where each channel's numbering stands in this process. */
  useLatestSeq(source: (channelId: string) => number, probe: (channel: ChannelDoc) => Promise<number>): void {
    this.latestSeqSeen = source;
    this.probeLastSeq = probe;
  }

  toPublic(channel: ChannelDoc, membership: MembershipDoc | null, memberCount?: number): PublicChannel {
    const tz = this.deps.config.server.timezone;
    // What this process has stored or is about to write counts too (see WRITE_BEHIND_MS).
    const lastSeq = Math.max(channel.last_seq, this.latestSeqSeen(channel._id));
    const lastRead = membership
      ? Math.max(membership.last_read_seq, this.readWriter.pending(membership._id, 'last_read_seq') ?? 0)
      : 0;
    return {
      id: channel._id,
      name: channel.name,
      kind: channel.kind,
      description: channel.description,
      department: channel.department,
      participants: channel.participants,
      created_by: channel.created_by,
      created_at: formatTimestamp(channel.created_at, tz),
      updated_at: formatTimestamp(channel.updated_at, tz),
      archived: channel.archived_at !== null,
      archived_at: formatOptionalTimestamp(channel.archived_at, tz),
      last_seq: lastSeq,
      last_message_at: formatOptionalTimestamp(channel.last_message_at, tz),
      unread_count: membership ? Math.max(0, lastSeq - lastRead) : 0,
      membership: membership
        ? {
            role: membership.role,
            last_read_seq: lastRead,
            joined_at: formatTimestamp(membership.joined_at, tz),
            muted: membership.muted,
            hidden: membership.hidden,
          }
        : null,
      ...(memberCount !== undefined ? { member_count: memberCount } : {}),
    };
  }

  // ---- finding channels and checking access ----

  /** A channel by id or unique name, whoever asks (callers check access). */
  async find(reference: string): Promise<ChannelDoc | null> {
    return isId(reference)
      ? this.deps.channels.findById(reference)
      : this.deps.channels.findByName(reference);
  }

  private canSee(actor: Actor, channel: ChannelDoc, membership: MembershipDoc | null): boolean {
    if (membership) return true;
    if (channel.kind === 'public') return true;
    if (channel.kind === 'direct') return false;
    return can(actor, 'channel.manage_members_any') || can(actor, 'channel.manage_any');
  }

  /** The channel and the caller's membership; CHANNEL_NOT_FOUND when it does not exist or is not visible. */
  async access(actor: Actor, reference: string): Promise<ChannelAccess> {
    const channel = await this.find(reference);
    if (!channel) throw new Errors.CHANNEL_NOT_FOUND();
    const membership = await this.deps.channels.findMembership(channel._id, actor.id);
    if (!this.canSee(actor, channel, membership)) throw new Errors.CHANNEL_NOT_FOUND();
    return { channel, membership };
  }

  /** As `access`, and the caller must be a member (NOT_CHANNEL_MEMBER for a visible channel). */
  async memberAccess(
    actor: Actor,
    reference: string,
  ): Promise<ChannelAccess & { membership: MembershipDoc }> {
    const access = await this.access(actor, reference);
    if (!access.membership) throw new Errors.NOT_CHANNEL_MEMBER();
    return access as ChannelAccess & { membership: MembershipDoc };
  }

  /**
   * As `memberAccess`, answered from a short-lived cache of successful checks (for sends): an answer is
   * used at most SEND_ACCESS_CACHE_MS after its check began. Past half that age it is checked again in the
   * background, so someone sending steadily never waits on the database for it (under load that read was
   * the slowest step before a send's insert).
   */
  async memberAccessForSend(
    actor: Actor,
    reference: string,
  ): Promise<ChannelAccess & { membership: MembershipDoc }> {
    const key = `${actor.id}|${reference}`;
    const cached = this.sendAccess.get(key);
    const age = cached ? Date.now() - cached.at : Number.POSITIVE_INFINITY;
    if (cached && age < SEND_ACCESS_CACHE_MS) {
      if (age >= SEND_ACCESS_CACHE_MS / 2)
        void this.checkSendAccess(actor, reference, key).catch(() => undefined);
      return cached.access;
    }
    return this.checkSendAccess(actor, reference, key);
  }

  /**
   * One check at a time per sender and channel. Its answer is kept only if no removal came while it ran;
   * a refusal (or a failure) drops the earlier answer at once.
   */
  private checkSendAccess(
    actor: Actor,
    reference: string,
    key: string,
  ): Promise<ChannelAccess & { membership: MembershipDoc }> {
    const running = this.sendAccessChecks.get(key);
    if (running) return running;
    const startedAt = Date.now();
    const generation = this.sendAccessGeneration;
    const current = () => generation === this.sendAccessGeneration;
    const check: Promise<ChannelAccess & { membership: MembershipDoc }> = this.memberAccess(actor, reference)
      .then(
        (access) => {
          if (current()) {
            if (this.sendAccess.size >= SEND_ACCESS_CACHE_SIZE) this.sendAccess.clear();
            this.sendAccess.set(key, { access, at: startedAt });
          }
          return access;
        },
        (error: unknown) => {
          if (current()) this.sendAccess.delete(key);
          throw error;
        },
      )
      .finally(() => {
        if (this.sendAccessChecks.get(key) === check) this.sendAccessChecks.delete(key);
      });
    this.sendAccessChecks.set(key, check);
    return check;
  }

  /**
   * The channel `channelId` for a member already vouched for by the realtime hub, whose membership view is
   * what live delivery goes by (so a resume may read what delivery would have sent). The channel record
   * comes from a cache as short-lived as the send checks': a reconnect storm reads each channel about once
   * a second, not once per socket. CHANNEL_NOT_FOUND when it does not exist.
   */
  async channelForMember(channelId: string): Promise<ChannelDoc> {
    const cached = this.memberChannels.get(channelId);
    if (cached && Date.now() - cached.at < SEND_ACCESS_CACHE_MS) return cached.channel;
    const channel = isId(channelId) ? await this.deps.channels.findById(channelId) : null;
    if (!channel) throw new Errors.CHANNEL_NOT_FOUND();
    if (this.memberChannels.size >= SEND_ACCESS_CACHE_SIZE) this.memberChannels.clear();
    this.memberChannels.set(channelId, { channel, at: Date.now() });
    return channel;
  }

  /** Membership removed, channel archived or renamed: no send or resume may rely on an earlier check. */
  private forgetSendAccess(): void {
    this.sendAccessGeneration += 1;
    this.sendAccess.clear();
    this.sendAccessChecks.clear();
    this.memberChannels.clear();
  }

  private assertOpen(channel: ChannelDoc): void {
    if (channel.archived_at) throw new Errors.CHANNEL_ARCHIVED();
  }

  /** Owners manage their group and public channels; moderators and admins manage any. */
  private assertCanManageMembers(actor: Actor, access: ChannelAccess): void {
    if (isManaged(access.channel)) {
      throw new Errors.MEMBERSHIP_MANAGED(
        'Membership of direct, department and general channels is managed by the server',
      );
    }
    if (access.membership?.role === 'owner') return;
    assertCan(actor, 'channel.manage_members_any');
  }

  private assertCanEdit(actor: Actor, access: ChannelAccess): void {
    const { channel } = access;
    if (channel.kind === 'direct' || channel.name_lower === GENERAL_CHANNEL) throw new Errors.FORBIDDEN();
    if (channel.kind !== 'department' && access.membership?.role === 'owner') return;
    assertCan(actor, 'channel.manage_any');
  }

  // ---- creating and changing channels ----

  /** Creates a channel; `created` is false for a direct channel that already existed. */
  async create(
    actor: Actor,
    input: NewChannel,
    context: RequestContext,
  ): Promise<{ channel: PublicChannel; created: boolean }> {
    if (input.kind === 'direct') return this.createDirectFromInput(actor, input);
    assertCan(actor, `channel.create.${input.kind}`);
    if (!input.name) throw validationError('name is required', [{ path: 'name', message: 'is required' }]);
    if (input.kind === 'department' && input.members?.length) {
      throw validationError('Department channels take their members from the department', [
        { path: 'members', message: 'must be empty for a department channel' },
      ]);
    }
    const department = input.kind === 'department' ? (input.department ?? input.name).trim() : null;
    // One channel per department: membership sync follows that one.
    if (department !== null && (await this.deps.channels.findDepartmentChannel(department))) {
      throw new Errors.DEPARTMENT_CHANNEL_EXISTS();
    }
    const members =
      input.kind === 'department' ? [] : await this.resolveMembers(input.members ?? [], 'members');
    const now = this.now();
    const channel = channelDoc({
      name: input.name,
      kind: input.kind,
      description: input.description ?? null,
      department,
      createdBy: actor.id,
      now,
    });
    await this.insertChannel(channel);
    if (input.kind === 'department') {
      await this.syncDepartmentMembers(channel);
    } else {
      try {
        await this.addMemberships(channel, [{ userId: actor.id, role: 'owner' }]);
        await this.addMemberships(
          channel,
          members
            .filter((user) => user._id !== actor.id)
            .map((user) => ({ userId: user._id, role: 'member' as const })),
        );
      } catch (error) {
        // Nothing half-made: a channel without its owner would hold its name and be seen by nobody.
        await this.deps.channels.deleteWithMembers(channel._id).catch(() => undefined);
        throw error;
      }
    }
    this.deps.audit.record(
      {
        action: 'channel.create',
        actor_id: actor.id,
        target_type: 'channel',
        target_id: channel._id,
        details: { name: channel.name, kind: channel.kind },
      },
      context,
    );
    const membership = await this.deps.channels.findMembership(channel._id, actor.id);
    return { channel: this.toPublic(channel, membership), created: true };
  }

  private async createDirectFromInput(
    actor: Actor,
    input: NewChannel,
  ): Promise<{ channel: PublicChannel; created: boolean }> {
    assertCan(actor, 'channel.create.direct');
    // Resolved first, so that the caller named by email counts as the caller.
    const others = (await this.resolveMembers(input.members ?? [], 'members')).filter(
      (user) => user._id !== actor.id,
    );
    if (others.length !== 1) {
      throw validationError('A direct channel is between you and exactly one other person', [
        { path: 'members', message: 'must name exactly one other user' },
      ]);
    }
    const { channel, membership, created } = await this.directChannel(actor, others[0]!);
    return { channel: this.toPublic(channel, membership), created };
  }

  /**
   * The direct channel between the caller and `other` if it exists yet (null otherwise); refuses a
   * recipient nobody may write to. Changes nothing.
   */
  async existingDirect(actor: Actor, other: UserDoc): Promise<ChannelDoc | null> {
    if (other._id === actor.id)
      throw new Errors.INVALID_RECIPIENT('You cannot send a direct message to yourself');
    // Checked on every use, not only when the channel is made: a disabled account receives nothing.
    if (other.status !== 'active') throw new Errors.INVALID_RECIPIENT('This account is disabled');
    return this.deps.channels.findByName(directChannelName(actor.id, other._id));
  }

  /**
   * The direct channel between the caller and `other`, created (with both memberships) on first use.
   * `found`: what `existingDirect` just answered, so the send path looks it up once.
   */
  async directChannel(
    actor: Actor,
    other: UserDoc,
    found?: ChannelDoc | null,
  ): Promise<ChannelAccess & { membership: MembershipDoc; created: boolean }> {
    let channel = found !== undefined ? found : await this.existingDirect(actor, other);
    const pair = [actor.id, other._id].sort();
    const name = directChannelName(actor.id, other._id);
    let created = false;
    if (!channel) {
      const fresh = channelDoc({
        name,
        kind: 'direct',
        description: null,
        department: null,
        participants: pair,
        createdBy: actor.id,
        now: this.now(),
      });
      // Two first messages racing: the unique name lets one insert win; the other uses the winner's.
      const winner = await this.insertChannel(fresh, { ifExists: 'return' });
      channel = winner ?? fresh;
      created = winner === null;
    }
    // Ensured on every use: a crash between creating the channel and its memberships heals here.
    let membership = await this.deps.channels.findMembership(channel._id, actor.id);
    if (!membership || !(await this.deps.channels.findMembership(channel._id, other._id))) {
      await this.addMemberships(
        channel,
        pair.map((userId) => ({ userId, role: 'member' as const })),
      );
      membership = await this.deps.channels.findMembership(channel._id, actor.id);
    }
    return { channel, membership: membership!, created };
  }

  /** The direct channel between two users if it exists (never creates one). */
  findDirect(userId: string, otherId: string): Promise<ChannelDoc | null> {
    return this.deps.channels.findByName(directChannelName(userId, otherId));
  }

  async update(
    actor: Actor,
    reference: string,
    changes: { name?: string; description?: string | null },
    context: RequestContext,
  ): Promise<PublicChannel> {
    const access = await this.access(actor, reference);
    this.assertCanEdit(actor, access);
    this.assertOpen(access.channel);
    const set: Partial<ChannelDoc> = { updated_at: this.now() };
    if (changes.name !== undefined)
      Object.assign(set, { name: changes.name, name_lower: changes.name.toLowerCase() });
    if (changes.description !== undefined) set.description = changes.description;
    let channel: ChannelDoc | null;
    try {
      channel = await this.channelDocTurns.run(access.channel._id, () =>
        this.deps.channels.update(access.channel._id, set),
      );
    } catch (error) {
      if (isDuplicateKey(error)) throw new Errors.CHANNEL_NAME_TAKEN();
      throw error;
    }
    if (!channel) throw new Errors.CHANNEL_NOT_FOUND();
    this.forgetSendAccess();
    this.deps.audit.record(
      {
        action: 'channel.update',
        actor_id: actor.id,
        target_type: 'channel',
        target_id: channel._id,
        details: { fields: Object.keys(changes) },
      },
      context,
    );
    return this.toPublic(channel, access.membership);
  }

  /** Archives (never deletes): history stays readable, nobody can post. */
  async archive(actor: Actor, reference: string, context: RequestContext): Promise<PublicChannel> {
    const access = await this.access(actor, reference);
    this.assertCanEdit(actor, access);
    if (access.channel.archived_at) return this.toPublic(access.channel, access.membership);
    const now = this.now();
    const channel = await this.channelDocTurns.run(access.channel._id, () =>
      this.deps.channels.update(access.channel._id, { archived_at: now, updated_at: now }),
    );
    if (!channel) throw new Errors.CHANNEL_NOT_FOUND();
    this.forgetSendAccess();
    this.deps.audit.record(
      { action: 'channel.archive', actor_id: actor.id, target_type: 'channel', target_id: channel._id },
      context,
    );
    return this.toPublic(channel, access.membership);
  }

  // ---- reading channels ----

  async get(actor: Actor, reference: string): Promise<PublicChannel> {
    const { channel, membership } = await this.access(actor, reference);
    return this.toPublic(channel, membership, await this.deps.channels.countMembers(channel._id));
  }

  /** The caller's channels (most recently active first), with unread counts. */
  async listMine(actor: Actor, options: { includeArchived: boolean }): Promise<PublicChannel[]> {
    const memberships = await this.deps.channels.membershipsOfUser(actor.id);
    const byChannel = new Map(memberships.map((membership) => [membership.channel_id, membership]));
    const channels = await this.deps.channels.findByIds([...byChannel.keys()]);
    return channels
      .filter((channel) => options.includeArchived || !channel.archived_at)
      .sort(
        (a, b) =>
          (b.last_message_at?.getTime() ?? b.created_at.getTime()) -
            (a.last_message_at?.getTime() ?? a.created_at.getTime()) ||
          a.name_lower.localeCompare(b.name_lower),
      )
      .map((channel) => this.toPublic(channel, byChannel.get(channel._id) ?? null));
  }

  /** The ids of the channels the caller belongs to (search is limited to them). */
  memberChannelIds(actor: Actor): Promise<string[]> {
    return this.deps.channels.channelIdsOfUser(actor.id);
  }

  /** Public channels anyone may join, by name, with cursor paging. */
  async listPublic(
    actor: Actor,
    options: { cursor?: string; limit: number },
  ): Promise<{ channels: PublicChannel[]; next_cursor: string | null; has_more: boolean }> {
    const fetched = await this.deps.channels.listPublic(options.limit + 1, options.cursor?.toLowerCase());
    const { rows: channels, ...paging } = pageOf(fetched, options.limit, (last) => last.name_lower);
    const memberships = await Promise.all(
      channels.map((channel) => this.deps.channels.findMembership(channel._id, actor.id)),
    );
    return {
      channels: channels.map((channel, index) => this.toPublic(channel, memberships[index] ?? null)),
      ...paging,
    };
  }

  // ---- members ----

  async listMembers(
    actor: Actor,
    reference: string,
    options: { cursor?: string; limit: number },
  ): Promise<{
    members: { user_id: string; name: string; email: string; role: MemberRole; joined_at: string }[];
    next_cursor: string | null;
    has_more: boolean;
  }> {
    const { channel } = await this.access(actor, reference);
    if (options.cursor !== undefined && !isId(options.cursor)) {
      throw invalidCursor();
    }
    const fetched = await this.deps.channels.members(channel._id, options.limit + 1, options.cursor);
    const { rows: memberships, ...paging } = pageOf(fetched, options.limit, (last) => last.user_id);
    const users = new Map(
      (await this.deps.users.findByIds(memberships.map((m) => m.user_id))).map((user) => [user._id, user]),
    );
    const tz = this.deps.config.server.timezone;
    return {
      members: memberships.flatMap((membership) => {
        const user = users.get(membership.user_id);
        if (!user) return [];
        return [
          {
            user_id: user._id,
            name: user.name,
            email: user.email,
            role: membership.role,
            joined_at: formatTimestamp(membership.joined_at, tz),
          },
        ];
      }),
      ...paging,
    };
  }

  async addMembers(
    actor: Actor,
    reference: string,
    userReferences: string[],
    context: RequestContext,
  ): Promise<{ channel_id: string; added: string[] }> {
    const access = await this.access(actor, reference);
    this.assertCanManageMembers(actor, access);
    this.assertOpen(access.channel);
    const users = await this.resolveMembers(userReferences, 'members');
    const added = await this.addMemberships(
      access.channel,
      users.map((user) => ({ userId: user._id, role: 'member' as const })),
    );
    if (added.length) {
      this.deps.audit.record(
        {
          action: 'channel.members_add',
          actor_id: actor.id,
          target_type: 'channel',
          target_id: access.channel._id,
          details: { user_ids: added },
        },
        context,
      );
    }
    return { channel_id: access.channel._id, added };
  }

  /** Removes a member; removing yourself is leaving. */
  async removeMember(
    actor: Actor,
    reference: string,
    userReference: string,
    context: RequestContext,
  ): Promise<void> {
    const access = await this.access(actor, reference);
    const target = await this.resolveUser(userReference);
    const leaving = target._id === actor.id;
    if (leaving) {
      if (isManaged(access.channel)) {
        throw new Errors.MEMBERSHIP_MANAGED('You cannot leave a direct, department or general channel');
      }
    } else {
      this.assertCanManageMembers(actor, access);
    }
    const membership = leaving
      ? access.membership
      : await this.deps.channels.findMembership(access.channel._id, target._id);
    if (!membership) throw new Errors.USER_NOT_FOUND();
    // Check and removal in the channel's turn: two owners leaving at once must not both pass the check.
    await this.channelDocTurns.run(access.channel._id, async () => {
      if (membership.role === 'owner' && access.channel.kind === 'group') {
        const owners = (await this.deps.channels.members(access.channel._id, 10_000)).filter(
          (member) => member.role === 'owner',
        );
        const remaining = await this.deps.channels.countMembers(access.channel._id);
        if (owners.length <= 1 && remaining > 1) throw new Errors.LAST_OWNER();
      }
      await this.deps.channels.removeMember(access.channel._id, target._id);
    });
    this.events.emit('membership.changed', {
      channelId: access.channel._id,
      userIds: [target._id],
      change: 'removed',
    });
    this.deps.audit.record(
      {
        action: leaving ? 'channel.leave' : 'channel.members_remove',
        actor_id: actor.id,
        target_type: 'channel',
        target_id: access.channel._id,
        details: { user_id: target._id },
      },
      context,
    );
  }

  /** Makes a member an owner or a plain member (owners; moderators and admins for any group or public). */
  async setMemberRole(
    actor: Actor,
    reference: string,
    userReference: string,
    role: MemberRole,
    context: RequestContext,
  ): Promise<{ channel_id: string; user_id: string; role: MemberRole }> {
    const access = await this.access(actor, reference);
    this.assertCanManageMembers(actor, access);
    this.assertOpen(access.channel);
    const target = await this.resolveUser(userReference);
    const key = membershipId(access.channel._id, target._id);
    // In the channel's turn, like leaving: the last owner cannot step down while others remain.
    await this.channelDocTurns.run(access.channel._id, async () => {
      const membership = await this.deps.channels.findMembership(access.channel._id, target._id);
      if (!membership) throw new Errors.USER_NOT_FOUND();
      if (membership.role === role) return;
      if (membership.role === 'owner') {
        const owners = (await this.deps.channels.members(access.channel._id, 10_000)).filter(
          (member) => member.role === 'owner',
        );
        if (owners.length <= 1) throw new Errors.LAST_OWNER();
      }
      await this.membershipTurns.run(key, () =>
        this.deps.channels.updateMembership(access.channel._id, target._id, { role }),
      );
    });
    this.deps.audit.record(
      {
        action: 'channel.member_role',
        actor_id: actor.id,
        target_type: 'channel',
        target_id: access.channel._id,
        details: { user_id: target._id, role },
      },
      context,
    );
    return { channel_id: access.channel._id, user_id: target._id, role };
  }

  /** Joins a public channel (idempotent). */
  async join(actor: Actor, reference: string, context: RequestContext): Promise<PublicChannel> {
    const access = await this.access(actor, reference);
    if (access.membership) return this.toPublic(access.channel, access.membership);
    if (access.channel.kind !== 'public') throw new Errors.FORBIDDEN();
    this.assertOpen(access.channel);
    await this.addMemberships(access.channel, [{ userId: actor.id, role: 'member' }]);
    this.deps.audit.record(
      { action: 'channel.join', actor_id: actor.id, target_type: 'channel', target_id: access.channel._id },
      context,
    );
    const membership = await this.deps.channels.findMembership(access.channel._id, actor.id);
    return this.toPublic(access.channel, membership);
  }

  /** Mute or hide a channel for the caller. */
  async updatePreferences(
    actor: Actor,
    reference: string,
    changes: { muted?: boolean; hidden?: boolean },
  ): Promise<PublicChannel> {
    const access = await this.memberAccess(actor, reference);
    const membership = await this.membershipTurns.run(access.membership._id, () =>
      this.deps.channels.updateMembership(access.channel._id, actor.id, changes),
    );
    if (!membership) throw new Errors.NOT_CHANNEL_MEMBER();
    return this.toPublic(access.channel, membership);
  }

  // ---- read positions ----

  /** Moves the caller's read position forward to `seq`; returns the position and unread count. */
  async markRead(
    actor: Actor,
    reference: string,
    seq: number,
  ): Promise<{ channel_id: string; last_read_seq: number; unread_count: number }> {
    const { channel, membership } = await this.memberAccess(actor, reference);
    // The channel record trails sends by up to WRITE_BEHIND_MS (or a crash, or another process): past
    // what this process knows, the messages themselves say how far the channel goes.
    let lastSeq = Math.max(channel.last_seq, this.latestSeqSeen(channel._id));
    if (seq > lastSeq) lastSeq = await this.probeLastSeq(channel);
    if (seq > lastSeq) {
      throw validationError(`seq is beyond the channel's last message (${lastSeq})`, [
        { path: 'seq', message: `must be at most ${lastSeq}` },
      ]);
    }
    const readBefore = Math.max(
      membership.last_read_seq,
      this.readWriter.pending(membership._id, 'last_read_seq') ?? 0,
    );
    const lastRead = Math.max(seq, readBefore);
    if (seq > readBefore) {
      await this.readWriter.advance(membership._id, { last_read_seq: seq }, { flush: true });
      this.deps.events.publish(
        { type: 'read_receipt', channel_id: channel._id, user_id: actor.id, seq },
        { kind: 'channel', channelId: channel._id },
      );
    }
    const unread = Math.max(0, lastSeq - lastRead);
    this.deps.events.publish(
      { type: 'unread_update', channel_id: channel._id, unread_count: unread },
      { kind: 'users', userIds: [actor.id] },
    );
    return { channel_id: channel._id, last_read_seq: lastRead, unread_count: unread };
  }

  /**
   * After a send: the channel's numbering moves forward and the sender has read their own message,
   * written in the background (WRITE_BEHIND_MS), shared by every send of that moment.
   */
  recordSend(channelId: string, senderId: string, seq: number, changeSeq: number): void {
    this.inBackground(this.channelWriter.advance(channelId, { last_seq: seq, last_change_seq: changeSeq }));
    this.inBackground(this.readWriter.advance(membershipId(channelId, senderId), { last_read_seq: seq }));
  }

  /** After an edit, delete or reaction: the channel's change position moves forward (in the background). */
  recordChange(channelId: string, changeSeq: number): void {
    this.inBackground(this.channelWriter.advance(channelId, { last_change_seq: changeSeq }));
  }

  private inBackground(write: Promise<void>): void {
    write.catch((error: unknown) => this.deps.log.warn({ err: error }, 'channel counters not written'));
  }

  /** Writes the counters still waiting (at shutdown). */
  async flushCounters(): Promise<void> {
    await Promise.all([this.channelWriter.flushAll(), this.readWriter.flushAll()]);
  }

  // ---- channels the server keeps in sync ----

  /** `general` exists and every active user is in it; every department has its channel with its people. */
  async reconcile(): Promise<{ added: number; removed: number; lists_corrected: number }> {
    const general = await this.ensureGeneral();
    const users = await this.deps.users.activeMembershipFacts();
    const generalMembers = new Set(await this.deps.channels.memberIds(general._id));
    let added = (
      await this.addMemberships(
        general,
        users
          .filter((user) => !generalMembers.has(user._id))
          .map((user) => ({ userId: user._id, role: 'member' as const })),
      )
    ).length;
    let removed = 0;
    const byDepartment = new Map<string, typeof users>();
    for (const user of users) {
      const people = byDepartment.get(user.department) ?? [];
      people.push(user);
      byDepartment.set(user.department, people);
    }
    const channels = new Map<string, ChannelDoc>();
    for (const department of byDepartment.keys()) {
      channels.set(department, await this.ensureDepartmentChannel(department));
    }
    const members = await this.deps.channels.memberIdsByChannel([...channels.values()].map((c) => c._id));
    for (const [department, channel] of channels) {
      const result = await this.syncDepartmentMembers(channel, {
        people: byDepartment.get(department)!,
        current: members.get(channel._id)!,
      });
      added += result.added;
      removed += result.removed;
    }
    // Users' channel lists (what the realtime hub and search read) follow the memberships.
    const listsCorrected = await this.deps.channels.rebuildUserChannels();
    return { added, removed, lists_corrected: listsCorrected };
  }

  /** Keeps `general` and department channels right when a user is created, imported or moved. */
  async onUserChanged({ user, previous }: UserChangeEvent): Promise<void> {
    if (user.status !== 'active') return;
    const general = await this.ensureGeneral();
    await this.addMemberships(general, [{ userId: user._id, role: 'member' }]);
    const department = await this.ensureDepartmentChannel(user.department);
    await this.addMemberships(department, [{ userId: user._id, role: 'member' }]);
    if (previous && previous.department !== user.department) {
      const old = await this.deps.channels.findDepartmentChannel(previous.department);
      if (old && (await this.deps.channels.removeMember(old._id, user._id))) {
        this.events.emit('membership.changed', {
          channelId: old._id,
          userIds: [user._id],
          change: 'removed',
        });
      }
    }
  }

  async ensureGeneral(): Promise<ChannelDoc> {
    const existing = await this.deps.channels.findByName(GENERAL_CHANNEL);
    if (existing) return existing;
    const channel = channelDoc({
      name: GENERAL_CHANNEL,
      kind: 'public',
      description: 'Everyone in the company',
      department: null,
      createdBy: SYSTEM_ACTOR.id,
      now: this.now(),
    });
    return (await this.insertChannel(channel, { ifExists: 'return' })) ?? channel;
  }

  private async ensureDepartmentChannel(department: string): Promise<ChannelDoc> {
    const existing = await this.deps.channels.findDepartmentChannel(department);
    if (existing) return existing;
    const slug = words(department).join('-').slice(0, 60) || 'unnamed';
    for (const name of [`dept-${slug}`, `dept-${slug}-${newId().slice(-6)}`]) {
      const channel = channelDoc({
        name,
        kind: 'department',
        description: `Everyone in ${department}`,
        department,
        createdBy: SYSTEM_ACTOR.id,
        now: this.now(),
      });
      const winner = await this.insertChannel(channel, { ifExists: 'return' });
      if (!winner) return channel;
      // The name was taken: by this department's channel (a race), or by another channel.
      if (winner.kind === 'department' && winner.department === department) return winner;
    }
    throw new Error(`could not name the channel of department ${department}`);
  }

  /** Makes a department channel's members exactly the department's active users. */
  private async syncDepartmentMembers(
    channel: ChannelDoc,
    known?: { people: Pick<UserDoc, '_id'>[]; current: string[] },
  ): Promise<{ added: number; removed: number }> {
    const people = known?.people ?? (await this.deps.users.activeMembershipFacts(channel.department ?? ''));
    const wanted = new Set(people.map((user) => user._id));
    const current = new Set(known?.current ?? (await this.deps.channels.memberIds(channel._id)));
    const added = await this.addMemberships(
      channel,
      [...wanted].filter((id) => !current.has(id)).map((userId) => ({ userId, role: 'member' as const })),
    );
    const stale = [...current].filter((id) => !wanted.has(id));
    for (const userId of stale) await this.deps.channels.removeMember(channel._id, userId);
    if (stale.length)
      this.events.emit('membership.changed', { channelId: channel._id, userIds: stale, change: 'removed' });
    return { added: added.length, removed: stale.length };
  }

  // ---- helpers ----

  /** Adds memberships (new members start with nothing unread); returns the user ids actually added. */
  private async addMemberships(
    channel: ChannelDoc,
    entries: { userId: string; role: MemberRole }[],
  ): Promise<string[]> {
    const now = this.now();
    // New members start with nothing unread (the record may trail this process's latest send).
    const lastSeq = Math.max(channel.last_seq, this.latestSeqSeen(channel._id));
    const added = await this.deps.channels.addMembers(
      entries.map((entry) => ({
        _id: membershipId(channel._id, entry.userId),
        channel_id: channel._id,
        user_id: entry.userId,
        role: entry.role,
        last_read_seq: lastSeq,
        joined_at: now,
        muted: false,
        hidden: false,
      })),
    );
    if (added.length)
      this.events.emit('membership.changed', { channelId: channel._id, userIds: added, change: 'added' });
    return added;
  }

  private async resolveUser(reference: string): Promise<UserDoc> {
    const user = await this.deps.users.findByReference(reference);
    if (!user) throw new Errors.USER_NOT_FOUND();
    return user;
  }

  /** Users named in a request body; unknown or disabled ones fail validation with their position. */
  private async resolveMembers(references: string[], field: string): Promise<UserDoc[]> {
    const users: UserDoc[] = [];
    const details: { path: string; message: string }[] = [];
    for (const [index, reference] of references.entries()) {
      const user = await this.resolveUser(reference).catch(() => null);
      if (!user) details.push({ path: `${field}.${index}`, message: 'is not a known user' });
      else if (user.status !== 'active')
        details.push({ path: `${field}.${index}`, message: 'is a disabled account' });
      else if (!users.some((known) => known._id === user._id)) users.push(user);
    }
    if (details.length) throw validationError('Some members are not valid users', details);
    return users;
  }

  /**
   * Inserts a channel and returns null. When the name is taken: CHANNEL_NAME_TAKEN, or with
   * ifExists 'return', the channel that holds the name.
   */
  private async insertChannel(
    channel: ChannelDoc,
    options: { ifExists?: 'return' } = {},
  ): Promise<ChannelDoc | null> {
    try {
      await this.deps.channels.insert(channel);
      return null;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      if (options.ifExists !== 'return') throw new Errors.CHANNEL_NAME_TAKEN();
      const existing = await this.deps.channels.findByName(channel.name);
      if (!existing) throw error;
      return existing;
    }
  }
}

function channelDoc(fields: {
  name: string;
  kind: ChannelKind;
  description: string | null;
  department: string | null;
  participants?: string[];
  createdBy: string;
  now: Date;
}): ChannelDoc {
  return {
    _id: newId(),
    name: fields.name,
    name_lower: fields.name.toLowerCase(),
    kind: fields.kind,
    description: fields.description,
    department: fields.department,
    participants: fields.participants ?? null,
    created_by: fields.createdBy,
    created_at: fields.now,
    updated_at: fields.now,
    archived_at: null,
    last_seq: 0,
    last_message_at: null,
  };
}
