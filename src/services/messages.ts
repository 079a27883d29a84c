// Messages: send (idempotent per sender's client_id), history, the changes feed, edit, delete, hide,
// reactions and search. REST routes and the WebSocket hub call the very same methods.
//
// Numbering. Each channel has two sequences: `seq` numbers its messages (strictly increasing, gap-free)
// and `change_seq` numbers every change (a send, an edit, a delete, a reaction), so the changes feed is
// one indexed query: "change_seq > since, in order". Numbers are claimed through unique keys (see
// repositories/messages.ts). Inside this process, writers of one channel take turns (KeyedQueue), so the
// next numbers are known without asking the database; a collision (another server process wrote, or
// the channel record trailed a crash) makes the writer find out which number is taken and move past it.
// Taking turns also means events are published in seq order and a failed send leaves no gap.
import type { EventLimiter } from '../lib/sliding-window.js';
import { can, type Actor } from '../auth/permissions.js';
import type { Config } from '../config/index.js';
import { isDatabaseUnavailable, isDuplicateKey } from '../db/errors.js';
import { Errors, invalidCursor, validationError, withRetryAfter } from '../errors.js';
import { KeyedQueue } from '../lib/keyed-queue.js';
import { pageOf } from '../lib/paging.js';
import { termsOf, words } from '../lib/search-terms.js';
import type { ChannelDoc } from '../repositories/channels.js';
import {
  MESSAGE_ID_PATTERN,
  messageKey,
  type AttachmentDoc,
  type MessageDoc,
  type MessagesRepository,
} from '../repositories/messages.js';
import type { UsersService } from './users.js';
import type { AuditService } from './audit.js';
import type { ChannelsService } from './channels.js';
import type { Principal, RequestContext } from './context.js';
import type { EventPublisher } from './events.js';
import {
  applyReaction,
  checkContent,
  checkReaction,
  publicMessage,
  publicReactions,
  storedMessage,
  type MessageType,
  type NewMessage,
  type PublicMessage,
  type PublicReaction,
} from './message-content.js';
import type { NotificationsService } from './notifications.js';

const MAX_NUMBERING_ATTEMPTS = 100;
/** Channels whose numbering this process remembers (forgotten ones are read from their record again). */
const MAX_REMEMBERED_CHANNELS = 50_000;

export interface SendInput {
  content: string;
  channel_id?: string;
  recipient_id?: string;
  message_type?: MessageType;
  client_id?: string;
  reply_to?: string | null;
  attachments?: string[];
}

/** What messages need from the files service (services/files.ts); routes never see it. */
export interface AttachmentSource {
  /** Checks the files the actor attaches (theirs, not deleted); changes nothing. */
  resolve(actor: Actor, fileIds: string[]): Promise<AttachmentDoc[]>;
  /** Shares checked files in the channel (just before the message that shows them is stored). */
  share(fileIds: string[], channelId: string): Promise<void>;
  /** Called once the message is stored, so deleting a file can mark the messages that show it. */
  attached(messageId: string, fileIds: string[]): Promise<void>;
  /** The URL a client downloads an attachment from (a signed link, so `<img src>` works). */
  urlFor(fileId: string): string;
}

/** Without a files service no file id names a file (services built on their own, e.g. in tools). */
export const NO_FILES: AttachmentSource = {
  resolve: async (_actor, fileIds) => {
    throw new Errors.FILE_NOT_FOUND(fileIds[0]);
  },
  share: async () => undefined,
  attached: async () => undefined,
  urlFor: (fileId) => `/api/v2/files/${fileId}`,
};

export type ReactionAction = 'add' | 'remove' | 'replace';

interface Marks {
  seq: number;
  changeSeq: number;
  /** changeSeq was checked against the stored messages in this process's life (see `knownChangeSeq`). */
  checked?: boolean;
}

export class MessagesService {
  private readonly turns = new KeyedQueue();
  private readonly marks = new Map<string, Marks>();
  /** Channels whose change position is being read from the messages (one read however many ask). */
  private readonly checking = new Map<string, Promise<number>>();
  private readonly sendsInFlight = new Map<string, Promise<{ message: PublicMessage; created: boolean }>>();
  private files: AttachmentSource = NO_FILES;

  constructor(
    private readonly deps: {
      messages: MessagesRepository;
      channels: ChannelsService;
      users: UsersService;
      notifications: NotificationsService;
      audit: AuditService;
      events: EventPublisher;
      /** MESSAGES_PER_MINUTE per sender, REST and WebSocket together (see plugins/app/limits.ts). */
      sendLimiter: EventLimiter;
      /** True while this process is the only one writing messages (no REDIS_URL): see `changes`. */
      soleWriter?: () => boolean;
      /** What the database monitor knows: sends queued behind a failing one fail fast (see sendOnce). */
      database?: { isDown(): boolean; unavailable(error: unknown): void };
      config: Config;
      log: { warn(object: object, message: string): void };
      now?: () => Date;
    },
  ) {
    deps.channels.useLatestSeq(
      (channelId) => this.latestSeqSeen(channelId),
      (channel) => this.probeLastSeq(channel),
    );
  }

  /** The files service plugs in here (plugins/app/files.ts). */
  useFiles(files: AttachmentSource): void {
    this.files = files;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  toPublic(message: MessageDoc): PublicMessage {
    return publicMessage(message, this.deps.config.server.timezone, this.files.urlFor);
  }

  // ---- numbering ----

  /**
   * Where a channel's numbering stands: what this process last stored, or the channel record (which
   * trails a send by a write, and is the only source after a restart or when another process wrote).
   * Read inside the channel's turn.
   */
  private marksFor(channel: ChannelDoc): Marks {
    const known = this.marks.get(channel._id);
    const fromRecord = { seq: channel.last_seq, changeSeq: channel.last_change_seq ?? 0 };
    const marks: Marks = {
      seq: Math.max(known?.seq ?? 0, fromRecord.seq),
      changeSeq: Math.max(known?.changeSeq ?? 0, fromRecord.changeSeq),
      ...(known?.checked ? { checked: true } : {}),
    };
    if (!known && this.marks.size >= MAX_REMEMBERED_CHANNELS) this.marks.clear();
    this.marks.set(channel._id, marks);
    return marks;
  }

  /**
   * A number was taken (by another process, or the channel record trailed a crash): find out which one
   * and move past it. The seq is probed by id, so no number is skipped: seqs stay gap-free.
   */
  private async moveMarksPast(channelId: string, marks: Marks, tried: { seq?: number; changeSeq: number }) {
    const fresh = await this.deps.channels.find(channelId);
    marks.seq = Math.max(marks.seq, fresh?.last_seq ?? 0);
    marks.changeSeq = Math.max(marks.changeSeq, fresh?.last_change_seq ?? 0);
    if (
      tried.seq !== undefined &&
      tried.seq > marks.seq &&
      (await this.deps.messages.findById(messageKey(channelId, tried.seq)))
    ) {
      // The seq is taken: walk by id to the last stored message.
      let last = tried.seq;
      while (await this.deps.messages.findById(messageKey(channelId, last + 1))) last += 1;
      marks.seq = last;
    } else if (tried.changeSeq > marks.changeSeq) {
      // A change position is taken beyond the record: ask the messages (a scan on FerretDB, but this
      // happens only after a crash or when another process writes to the channel).
      marks.changeSeq = Math.max(tried.changeSeq, await this.deps.messages.maxChangeSeq(channelId));
    }
  }

  /**
   * The channel's last seq: the record or what this process stored, and beyond that whatever another
   * process stored meanwhile (found by id: messages are "<channel>-<seq>").
   */
  private async probeLastSeq(channel: ChannelDoc): Promise<number> {
    let last = Math.max(channel.last_seq, this.latestSeqSeen(channel._id));
    while (await this.deps.messages.findById(messageKey(channel._id, last + 1))) last += 1;
    return last;
  }

  /**
   * The channel's highest change position, exact while this process is the only writer: read from the
   * messages the first time (the channel record may trail a crash), then kept by every write here.
   */
  private async knownChangeSeq(channel: ChannelDoc): Promise<number> {
    const marks = this.marks.get(channel._id);
    if (marks?.checked) return marks.changeSeq;
    let reading = this.checking.get(channel._id);
    if (!reading) {
      reading = this.deps.messages.maxChangeSeq(channel._id).finally(() => this.checking.delete(channel._id));
      this.checking.set(channel._id, reading);
    }
    const stored = await reading;
    // In the channel's turn, like every change to the marks: writes meanwhile only moved them forward,
    // and the larger of the two is the truth.
    return this.turns.run(channel._id, async () => {
      const current = this.marksFor(channel);
      current.changeSeq = Math.max(current.changeSeq, stored);
      current.checked = true;
      return current.changeSeq;
    });
  }

  /** The highest seq this process has stored in a channel (0 when it has not written there). */
  latestSeqSeen(channelId: string): number {
    return this.marks.get(channelId)?.seq ?? 0;
  }

  // ---- sending ----

  /** Sends a message; with a client_id already used by this sender, returns the stored one instead. */
  async send(principal: Principal, input: SendInput): Promise<{ message: PublicMessage; created: boolean }> {
    if (input.client_id === undefined) return this.sendOnce(principal, input);
    // Retries of one client_id arriving together in this process wait for the first instead of racing.
    const key = `${principal.id}:${input.client_id}`;
    const running = this.sendsInFlight.get(key);
    if (running) {
      await running.catch(() => undefined);
      return this.sendOnce(principal, input);
    }
    const attempt = this.sendOnce(principal, input);
    this.sendsInFlight.set(key, attempt);
    try {
      return await attempt;
    } finally {
      this.sendsInFlight.delete(key);
    }
  }

  private async sendOnce(
    principal: Principal,
    input: SendInput,
  ): Promise<{ message: PublicMessage; created: boolean }> {
    const messageType = input.message_type ?? 'text';
    const fileIds = [...new Set(input.attachments ?? [])];
    // A file message without words shows the names of its files (filled in once they are known).
    const namesOnly = messageType === 'file' && input.content.trim() === '';
    let content = namesOnly ? '' : checkContent(input.content, this.deps.config);
    if (messageType === 'file' && fileIds.length === 0) {
      throw validationError('A file message needs attachments', [
        { path: 'attachments', message: 'must name at least one file for message_type file' },
      ]);
    }
    // Everything that can refuse the send runs before anything is written: a refused first message to
    // someone must not leave a direct channel behind, nor a refused send a file shared.
    const target = await this.target(principal, input);
    const found = target.channel;

    if (input.client_id !== undefined) {
      const existing = await this.findByClientId(principal.id, input.client_id);
      if (existing) {
        if (!found) throw new Errors.CLIENT_ID_CONFLICT();
        return { message: this.replay(existing, found, namesOnly ? null : content), created: false };
      }
    }
    if (found?.archived_at) throw new Errors.CHANNEL_ARCHIVED();

    let replyTo: string | null = null;
    if (input.reply_to) {
      const parent = await this.deps.messages.findById(input.reply_to);
      if (!parent || !found || parent.channel_id !== found._id) throw new Errors.INVALID_REPLY_TO();
      replyTo = parent._id;
    }
    const attachments = fileIds.length ? await this.files.resolve(principal, fileIds) : [];
    if (namesOnly) content = fileNamesText(attachments, this.deps.config.messages.max_length);
    // Counted once the send is known to be valid: a refused send does not use up the allowance.
    await this.takeSendAllowance(principal.id);

    const channel = found ?? (await target.open());
    const { recipientId } = target;
    // Shared before the message is stored: a message never shows a file its readers cannot open.
    if (fileIds.length) await this.files.share(fileIds, channel._id);

    const draft: NewMessage = {
      channelId: channel._id,
      channelKind: channel.kind,
      recipientId,
      senderId: principal.id,
      senderName: principal.name,
      content,
      messageType,
      replyTo,
      attachments,
      clientId: input.client_id,
      createdAt: this.now(),
    };

    const stored = await this.turns.run(channel._id, async () => {
      // Sends in a channel go one at a time. With the database away, each would wait out the database
      // timeout behind the one before it (the tenth answering after ten timeouts): once the monitor
      // knows it is away, the rest are refused at once.
      if (this.deps.database?.isDown()) throw new Errors.DATABASE_UNAVAILABLE();
      const marks = this.marksFor(channel);
      for (let attempt = 0; attempt < MAX_NUMBERING_ATTEMPTS; attempt += 1) {
        const seq = marks.seq + 1;
        const message = storedMessage(draft, seq, marks.changeSeq + 1);
        try {
          await this.deps.messages.insert(message);
        } catch (error) {
          if (isDatabaseUnavailable(error)) this.deps.database?.unavailable(error);
          if (!isDuplicateKey(error)) throw error;
          // The client_id was used meanwhile (a retry through another process), or a number was taken.
          if (input.client_id !== undefined) {
            const existing = await this.deps.messages.findByClientKey(principal.id, message.client_key);
            if (existing) return { message: existing, created: false };
          }
          await this.moveMarksPast(channel._id, marks, { seq, changeSeq: message.change_seq });
          continue;
        }
        marks.seq = message.seq;
        marks.changeSeq = message.change_seq;
        // Published inside the channel's turn, so events leave in seq order.
        this.publishMessage(message);
        return { message, created: true };
      }
      throw new Error(`no free sequence number in channel ${channel._id}`);
    });
    if (!stored.created) {
      return { message: this.replay(stored.message, channel, namesOnly ? null : content), created: false };
    }

    const message = stored.message;
    this.deps.channels.recordSend(channel._id, principal.id, message.seq, message.change_seq);
    try {
      if (fileIds.length) await this.files.attached(message._id, fileIds);
      // Only a shortcut for retries (without it a retry finds the message through the unique index).
      if (input.client_id !== undefined) {
        await this.deps.messages.rememberClientId(
          principal.id,
          input.client_id,
          message._id,
          message.created_at,
        );
      }
      // A delete racing this would leave the deleted text in notifications: check after storing them.
      await this.deps.notifications.notifyMentions(message, channel, async () => {
        const current = await this.deps.messages.findById(message._id);
        return current !== null && !current.deleted;
      });
    } catch (error) {
      // The message is stored and delivered; a lost mention notification is logged, not fatal.
      this.deps.log.warn(
        { err: error, message_id: message._id },
        'attachment, client_id record or mentions bookkeeping failed',
      );
    }
    return { message: this.toPublic(message), created: true };
  }

  private async findByClientId(senderId: string, clientId: string): Promise<MessageDoc | null> {
    const id = await this.deps.messages.findIdByClientId(senderId, clientId);
    return id ? this.deps.messages.findById(id) : null;
  }

  /** A retried send: the stored message, unless the client_id now comes with something else. */
  /** `content` null: the retry let the server write the text (a file message without words). */
  private replay(existing: MessageDoc, channel: ChannelDoc, content: string | null): PublicMessage {
    // The text as first sent: an edit since then does not make the retry a different message.
    const original = existing.edited_at ? existing.edit_history[0]?.content : existing.content;
    const differs = content !== null && !existing.deleted && original !== undefined && original !== content;
    if (existing.channel_id !== channel._id || differs) {
      throw new Errors.CLIENT_ID_CONFLICT();
    }
    return this.toPublic(existing);
  }

  private async takeSendAllowance(userId: string): Promise<void> {
    if (!this.deps.config.rate_limit.enabled) return;
    const { wait } = await this.deps.sendLimiter.take(userId, Date.now());
    if (wait > 0) throw withRetryAfter(new Errors.RATE_LIMITED(`${wait} seconds`), wait);
  }

  /**
   * Where a send goes: a channel the caller belongs to, or the direct channel with a recipient. A direct
   * channel not made yet is `null`, with `open()` to make it once the send is known to be valid.
   */
  private async target(
    principal: Principal,
    input: SendInput,
  ): Promise<{ channel: ChannelDoc | null; recipientId: string | null; open(): Promise<ChannelDoc> }> {
    if (input.recipient_id !== undefined) {
      const recipient = await this.deps.users.resolve(input.recipient_id).catch((error: unknown) => {
        if ((error as { code?: string }).code === 'USER_NOT_FOUND') {
          throw new Errors.INVALID_RECIPIENT('The recipient is not a known user');
        }
        throw error;
      });
      const existing = await this.deps.channels.existingDirect(principal, recipient);
      // The channel is opened (memberships ensured) on every send, as before: a crash between making it
      // and its memberships heals here.
      const open = async () =>
        (await this.deps.channels.directChannel(principal, recipient, existing)).channel;
      return { channel: existing ? await open() : null, recipientId: recipient._id, open };
    }
    const access = await this.deps.channels.memberAccessForSend(principal, input.channel_id!);
    const recipientId =
      access.channel.kind === 'direct'
        ? (access.channel.participants?.find((id) => id !== principal.id) ?? null)
        : null;
    return { channel: access.channel, recipientId, open: async () => access.channel };
  }

  private publishMessage(message: MessageDoc): void {
    this.deps.events.publish(
      {
        type: message.channel_kind === 'direct' ? 'personal_message' : 'chat_message',
        ...this.toPublic(message),
      },
      { kind: 'channel', channelId: message.channel_id },
    );
  }

  // ---- reading ----

  /** Messages by seq: the latest `limit`, or before/after a seq; always in ascending seq order. */
  async history(
    actor: Actor,
    reference: string,
    query: { before_seq?: number; after_seq?: number; limit: number },
  ): Promise<{ channel_id: string; messages: PublicMessage[]; has_more: boolean; last_seq: number }> {
    const { channel } = await this.deps.channels.memberAccess(actor, reference);
    return this.page(actor, channel, { afterSeq: query.after_seq, beforeSeq: query.before_seq }, query.limit);
  }

  /**
   * A page of what the viewer sees (not hidden by them) between afterSeq and beforeSeq: the newest ones,
   * or with only afterSeq the oldest after it. Read by seq in windows, so it costs the same whatever the
   * size of the channel.
   */
  private async page(
    actor: Actor,
    channel: ChannelDoc,
    range: { afterSeq?: number; beforeSeq?: number },
    limit: number,
  ): Promise<{ channel_id: string; messages: PublicMessage[]; has_more: boolean; last_seq: number }> {
    const lastSeq = await this.probeLastSeq(channel);
    const low = (range.afterSeq ?? 0) + 1;
    const high = Math.min(lastSeq, (range.beforeSeq ?? Number.MAX_SAFE_INTEGER) - 1);
    const forward = range.afterSeq !== undefined && range.beforeSeq === undefined;
    const visible: MessageDoc[] = [];
    // One more than asked for tells whether more exist. Hidden messages make a window come up short:
    // the next window continues where it ended.
    let next = forward ? low : high;
    while (visible.length <= limit && (forward ? next <= high : next >= low)) {
      const want = limit + 1 - visible.length;
      const from = forward ? next : Math.max(low, next - want + 1);
      const to = forward ? Math.min(high, next + want - 1) : next;
      const docs = await this.deps.messages.bySeqRange(channel._id, from, to);
      const seen = docs.filter((doc) => !doc.hidden_for.includes(actor.id));
      if (forward) visible.push(...seen);
      else visible.unshift(...seen);
      next = forward ? to + 1 : from - 1;
    }
    const hasMore = visible.length > limit;
    const kept = forward ? visible.slice(0, limit) : visible.slice(-limit);
    return {
      channel_id: channel._id,
      messages: kept.map((doc) => this.toPublic(doc)),
      has_more: hasMore,
      last_seq: lastSeq,
    };
  }

  /** The seed's history form: by channel or by the other person of a direct conversation; cursors are message ids. */
  async seedHistory(
    principal: Principal,
    query: { channel_id?: string; recipient_id?: string; before?: string; after?: string; limit: number },
  ): Promise<{ channel_id: string | null; messages: PublicMessage[]; has_more: boolean; last_seq: number }> {
    let channel: ChannelDoc;
    if (query.recipient_id !== undefined) {
      const other = await this.deps.users.resolve(query.recipient_id);
      const pair = [principal.id, other._id].sort();
      const direct = await this.deps.channels.find(`dm:${pair[0]}:${pair[1]}`);
      if (!direct || other._id === principal.id)
        return { channel_id: null, messages: [], has_more: false, last_seq: 0 };
      channel = (await this.deps.channels.memberAccess(principal, direct._id)).channel;
    } else {
      channel = (await this.deps.channels.memberAccess(principal, query.channel_id!)).channel;
    }
    const cursorSeq = async (field: 'before' | 'after', id: string | undefined) => {
      if (id === undefined) return undefined;
      const message = await this.deps.messages.findById(id);
      if (!message || message.channel_id !== channel._id) {
        throw validationError(`Invalid ${field} cursor`, [
          { path: field, message: 'must be the id of a message in this conversation' },
        ]);
      }
      return message.seq;
    };
    return this.page(
      principal,
      channel,
      { beforeSeq: await cursorSeq('before', query.before), afterSeq: await cursorSeq('after', query.after) },
      query.limit,
    );
  }

  /** Every message created, edited, deleted or reacted to after position `since`, in order, as it is now. */
  async changes(
    actor: Actor,
    reference: string,
    query: { since_seq: number; limit: number },
    /** Set by the realtime hub when its membership view has `actor` in the channel `reference` (an id). */
    options: { hubMember?: boolean } = {},
  ): Promise<{ channel_id: string; messages: PublicMessage[]; last_seq: number; has_more: boolean }> {
    const channel = options.hubMember
      ? await this.deps.channels.channelForMember(reference)
      : (await this.deps.channels.memberAccess(actor, reference)).channel;
    // A process that is the only writer knows every change position once it has read the channel's
    // highest from the messages (once per channel): a client already at the end gets its answer without
    // a query (on FerretDB that query reads every message, and a reconnect storm of resumes took the
    // database down: test/reliability/storm.test.ts). With other instances writing, the query always runs.
    const known = this.deps.soleWriter?.() ? await this.knownChangeSeq(channel) : undefined;
    // With nothing new, the high-water mark is the channel's own (never beyond it, so a client that
    // sent a position from elsewhere is corrected rather than made to skip what comes next).
    const channelMark = Math.max(
      channel.last_change_seq ?? 0,
      known ?? this.marks.get(channel._id)?.changeSeq ?? 0,
    );
    if (known !== undefined && query.since_seq >= known) {
      return { channel_id: channel._id, messages: [], last_seq: channelMark, has_more: false };
    }
    const docs = await this.deps.messages.changes(channel._id, actor.id, query.since_seq, query.limit + 1);
    const hasMore = docs.length > query.limit;
    const kept = docs.slice(0, query.limit);
    const lastSeq = kept.at(-1)?.change_seq ?? Math.min(query.since_seq, channelMark);
    return {
      channel_id: channel._id,
      messages: kept.map((doc) => this.toPublic(doc)),
      last_seq: lastSeq,
      has_more: hasMore,
    };
  }

  // ---- changing messages ----

  /** A message and its channel, if the caller can see the channel; MESSAGE_NOT_FOUND otherwise. */
  private async visibleMessage(actor: Actor, messageId: string, { memberOnly = true } = {}) {
    const message = MESSAGE_ID_PATTERN.test(messageId) ? await this.deps.messages.findById(messageId) : null;
    if (!message || message.hidden_for.includes(actor.id)) throw new Errors.MESSAGE_NOT_FOUND();
    try {
      const access = memberOnly
        ? await this.deps.channels.memberAccess(actor, message.channel_id)
        : await this.deps.channels.access(actor, message.channel_id);
      return { message, ...access };
    } catch (error) {
      if ((error as { code?: string }).code === 'CHANNEL_NOT_FOUND') throw new Errors.MESSAGE_NOT_FOUND();
      throw error;
    }
  }

  /**
   * Applies `change` to the current version of a message under the channel's turn, stamping it with the
   * next change position. `change` returns the fields to set, or null when nothing changes.
   */
  private async mutate(
    messageId: string,
    channelId: string,
    change: (current: MessageDoc) => Partial<MessageDoc> | null,
  ): Promise<{ message: MessageDoc; changed: boolean }> {
    const result = await this.turns.run(channelId, async () => {
      const channel = await this.deps.channels.find(channelId);
      if (!channel) throw new Errors.MESSAGE_NOT_FOUND();
      const marks = this.marksFor(channel);
      for (let attempt = 0; attempt < MAX_NUMBERING_ATTEMPTS; attempt += 1) {
        const current = await this.deps.messages.findById(messageId);
        if (!current) throw new Errors.MESSAGE_NOT_FOUND();
        const set = change(current);
        if (!set) return { message: current, changed: false };
        const changeSeq = marks.changeSeq + 1;
        let updated: MessageDoc | null;
        try {
          updated = await this.deps.messages.restamp(messageId, current.change_seq, changeSeq, set);
        } catch (error) {
          if (!isDuplicateKey(error)) throw error;
          await this.moveMarksPast(channelId, marks, { changeSeq });
          continue;
        }
        if (!updated) continue; // changed meanwhile by another process: read it again
        marks.changeSeq = changeSeq;
        return { message: updated, changed: true };
      }
      throw new Error(`no free change position in channel ${channelId}`);
    });
    if (result.changed) this.deps.channels.recordChange(channelId, result.message.change_seq);
    return result;
  }

  async edit(principal: Principal, messageId: string, rawContent: string): Promise<PublicMessage> {
    const content = checkContent(rawContent, this.deps.config);
    const { message, channel } = await this.visibleMessage(principal, messageId);
    if (message.sender_id !== principal.id) throw new Errors.NOT_MESSAGE_SENDER();
    if (channel.archived_at) throw new Errors.CHANNEL_ARCHIVED();
    const { edit_window_s: window, edit_history_limit: historyLimit } = this.deps.config.messages;
    const result = await this.mutate(message._id, channel._id, (current) => {
      if (current.deleted) throw new Errors.MESSAGE_DELETED();
      if (this.now().getTime() - current.created_at.getTime() > window * 1000)
        throw new Errors.EDIT_WINDOW_CLOSED();
      if (current.content === content) return null;
      const history = [
        ...current.edit_history,
        { content: current.content, edited_at: current.edited_at ?? current.created_at },
      ];
      return {
        content,
        terms: termsOf(content),
        edited_at: this.now(),
        edit_history: historyLimit > 0 ? history.slice(-historyLimit) : [],
      };
    });
    if (result.changed) {
      this.publishUpdate(result.message);
      // The notifications it left show the new text, not the one the sender took back.
      await this.deps.notifications.refreshExcerpts(result.message);
    }
    return this.toPublic(result.message);
  }

  /** Deletes for everyone: a tombstone keeps id and seq; content, attachments and reactions go. */
  async remove(principal: Principal, messageId: string, context: RequestContext): Promise<PublicMessage> {
    const { message, channel } = await this.visibleMessage(principal, messageId, { memberOnly: false });
    const bySender = message.sender_id === principal.id;
    if (!bySender) {
      if (!can(principal, 'message.delete_any')) {
        throw channel.kind === 'public' || (await this.isMember(principal, channel))
          ? new Errors.FORBIDDEN()
          : new Errors.MESSAGE_NOT_FOUND();
      }
    } else if (!(await this.isMember(principal, channel))) {
      throw new Errors.NOT_CHANNEL_MEMBER();
    }
    const result = await this.mutate(message._id, channel._id, (current) =>
      current.deleted
        ? null
        : {
            deleted: true,
            deleted_at: this.now(),
            deleted_by: principal.id,
            content: '',
            terms: [],
            attachments: [],
            reactions: [],
            edit_history: [],
          },
    );
    // Also when it was already deleted: a retry finishes what a failed first attempt left.
    await this.deps.notifications.forgetMessage(message._id);
    if (result.changed) {
      this.publishUpdate(result.message);
      if (!bySender) {
        this.deps.audit.record(
          {
            action: 'message.delete_moderated',
            actor_id: principal.id,
            target_type: 'message',
            target_id: message._id,
            details: { channel_id: channel._id, sender_id: message.sender_id, seq: message.seq },
          },
          context,
        );
      }
    }
    return this.toPublic(result.message);
  }

  /** A deleted file stays listed on the messages that shared it, marked deleted (no more link). */
  async markAttachmentDeleted(messageId: string, fileId: string): Promise<void> {
    const message = await this.deps.messages.findById(messageId);
    if (!message) return;
    const result = await this.mutate(messageId, message.channel_id, (current) =>
      current.attachments.some((attachment) => attachment.id === fileId && !attachment.deleted)
        ? {
            attachments: current.attachments.map((attachment) =>
              attachment.id === fileId ? { ...attachment, deleted: true } : attachment,
            ),
          }
        : null,
    );
    if (result.changed) this.publishUpdate(result.message);
  }

  private async isMember(actor: Actor, channel: ChannelDoc): Promise<boolean> {
    try {
      await this.deps.channels.memberAccess(actor, channel._id);
      return true;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'NOT_CHANNEL_MEMBER' || code === 'CHANNEL_NOT_FOUND') return false;
      throw error;
    }
  }

  /** Hides a message from the caller's own view (history, changes, search). */
  async hide(actor: Actor, messageId: string): Promise<void> {
    const { message } = await this.visibleMessage(actor, messageId);
    // In the channel's turn: FerretDB would let a concurrent change of the message undo this one.
    await this.turns.run(message.channel_id, () => this.deps.messages.hideFor(message._id, actor.id));
  }

  async react(
    actor: Actor,
    messageId: string,
    change: { action: ReactionAction; reaction: string; old?: string },
  ): Promise<{ message_id: string; channel_id: string; reactions: PublicReaction[]; change_seq: number }> {
    const reaction = checkReaction(change.reaction);
    if (change.action === 'replace') {
      if (change.old === undefined) {
        throw validationError('replace needs old_reaction_type', [
          { path: 'old_reaction_type', message: 'is required to replace a reaction' },
        ]);
      }
      checkReaction(change.old, 'old_reaction_type');
    }
    const { message, channel } = await this.visibleMessage(actor, messageId);
    if (channel.archived_at) throw new Errors.CHANNEL_ARCHIVED();
    const max = this.deps.config.messages.max_reactions;
    const result = await this.mutate(message._id, channel._id, (current) => {
      if (current.deleted) throw new Errors.MESSAGE_DELETED();
      const reactions = applyReaction(current.reactions, actor.id, { ...change, reaction });
      if (!reactions) return null;
      if (reactions.length > max && reactions.length > current.reactions.length)
        throw new Errors.TOO_MANY_REACTIONS();
      return { reactions };
    });
    const summary = {
      message_id: result.message._id,
      channel_id: channel._id,
      reactions: publicReactions(result.message.reactions),
      change_seq: result.message.change_seq,
    };
    if (result.changed) {
      this.deps.events.publish(
        { type: 'reaction_update', ...summary },
        { kind: 'channel', channelId: channel._id },
      );
    }
    return summary;
  }

  private publishUpdate(message: MessageDoc): void {
    this.deps.events.publish(
      { type: 'message_update', ...this.toPublic(message) },
      { kind: 'channel', channelId: message.channel_id },
    );
  }

  // ---- search ----

  /** Newest first, over the channels the caller belongs to now; the last word matches as a prefix. */
  async search(
    actor: Actor,
    query: {
      q: string;
      channel_id?: string;
      sender_id?: string;
      before?: Date;
      after?: Date;
      cursor?: string;
      limit: number;
    },
  ): Promise<{ messages: PublicMessage[]; next_cursor: string | null; has_more: boolean }> {
    const queryWords = words(query.q);
    if (queryWords.length === 0) {
      throw validationError('q needs at least one letter or digit', [
        { path: 'q', message: 'must contain at least one letter or digit' },
      ]);
    }
    const beforeCursor = query.cursor !== undefined ? decodeSearchCursor(query.cursor) : undefined;
    let channelIds: string[];
    if (query.channel_id !== undefined) {
      channelIds = [(await this.deps.channels.memberAccess(actor, query.channel_id)).channel._id];
    } else {
      channelIds = await this.deps.channels.memberChannelIds(actor);
    }
    let senderId: string | undefined;
    if (query.sender_id !== undefined) senderId = (await this.deps.users.resolve(query.sender_id))._id;
    if (channelIds.length === 0) return { messages: [], next_cursor: null, has_more: false };
    // A query that ends mid-word ("deploy fri") treats its last word as a prefix.
    const endsMidWord = /[\p{L}\p{N}]\p{M}*$/u.test(query.q.trim());
    const prefix = endsMidWord ? queryWords.at(-1)! : null;
    const exact = endsMidWord ? queryWords.slice(0, -1) : queryWords;
    const docs = await this.deps.messages.search({
      channelIds,
      words: [...new Set(exact)],
      prefix,
      senderId,
      before: query.before,
      after: query.after,
      beforeCursor,
      viewerId: actor.id,
      limit: query.limit + 1,
    });
    const { rows, ...paging } = pageOf(docs, query.limit, encodeSearchCursor);
    return { messages: rows.map((doc) => this.toPublic(doc)), ...paging };
  }
}

/** Search pages end at a message: its time and id (newest first, id breaks ties). */
function encodeSearchCursor(message: MessageDoc): string {
  return Buffer.from(JSON.stringify([message.created_at.getTime(), message._id])).toString('base64url');
}

function decodeSearchCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [time, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (
      typeof time === 'number' &&
      Number.isFinite(new Date(time).getTime()) &&
      typeof id === 'string' &&
      MESSAGE_ID_PATTERN.test(id)
    )
      return { createdAt: new Date(time), id };
  } catch {
    // fall through
  }
  throw invalidCursor();
}

/** The text of a file message sent without words: its files' names, within the length limit. */
function fileNamesText(attachments: readonly AttachmentDoc[], maxLength: number): string {
  const text = attachments.map((attachment) => attachment.file_name).join(', ');
  return [...text].slice(0, maxLength).join('');
}
