// What each client frame does. Sends, edits, reactions and read marks run the very same service calls as
// REST, so idempotency, validation, permissions and the per-user send limit are identical on both.
import type { Config } from '../config/index.js';
import { Errors, validationError } from '../errors.js';
import { isId } from '../lib/ids.js';
import type { ChannelsService } from '../services/channels.js';
import type { Principal, RequestContext } from '../services/context.js';
import type { MessagesService } from '../services/messages.js';
import type { UsersService } from '../services/users.js';
import type { ConnectionWork } from './connection-work.js';
import type { Hub } from './hub.js';
import type { Presence } from './presence.js';
import type { ClientFrame, FrameOf } from './protocol.js';

/** The fields of a frame's `ack`. */
export type AckFields = Record<string, unknown>;

/** Where a handler sends frames other than its ack (pong, all_statuses, sync), paced to the reader. */
export interface FrameOutput {
  send(frame: { type: string; [field: string]: unknown }): Promise<void>;
  /** Live events of the channel wait until `release` (a sync of it is being read). */
  hold(channelId: string): void;
  release(channelId: string): void;
}

export interface HandlerDeps {
  config: Config['ws'];
  hub: Hub;
  /** Runs the database work of sockets coming and going, a few at a time (plugins/app/realtime.ts). */
  connectionWork: ConnectionWork;
  presence: Presence;
  messages: MessagesService;
  channels: ChannelsService;
  users: UsersService;
}

/** Typing relays per user and channel: at most one per `typing_throttle_ms`. */
class TypingThrottle {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  allow(key: string, now: number): boolean {
    const previous = this.last.get(key);
    if (previous !== undefined && now - previous < this.intervalMs) return false;
    if (this.last.size > 50_000) {
      for (const [k, at] of this.last) if (now - at >= this.intervalMs) this.last.delete(k);
    }
    this.last.set(key, now);
    return true;
  }
}

export class FrameHandlers {
  private readonly typing: TypingThrottle;

  constructor(private readonly deps: HandlerDeps) {
    this.typing = new TypingThrottle(deps.config.typing_throttle_ms);
  }

  async handle(
    frame: ClientFrame,
    principal: Principal,
    context: RequestContext,
    out: FrameOutput,
  ): Promise<AckFields> {
    switch (frame.type) {
      case 'personal_message':
      case 'chat_message':
      case 'channel_message':
      case 'file_upload':
        return this.send(frame, principal);
      case 'edit_message':
        return this.edit(frame, principal);
      case 'delete_message':
        return this.remove(frame, principal, context);
      case 'reaction_update':
        return this.react(frame, principal);
      case 'mark_read':
        return this.markRead(frame, principal);
      case 'typing':
        return this.relayTyping(frame, principal);
      case 'set_status':
        return this.setStatus(frame, principal);
      case 'get_all_statuses':
        await out.send({ type: 'all_statuses', statuses: this.deps.presence.snapshot() });
        return {};
      case 'resume':
        return this.resume(frame, principal, out);
      case 'ping':
        await out.send({
          type: 'pong',
          ...(frame.id ? { ref: frame.id } : {}),
          server_time: new Date().toISOString(),
        });
        return {};
    }
  }

  private async send(
    frame: FrameOf<'personal_message' | 'chat_message' | 'channel_message' | 'file_upload'>,
    principal: Principal,
  ): Promise<AckFields> {
    const target =
      frame.type === 'personal_message'
        ? { recipient_id: frame.recipient_id }
        : frame.type === 'file_upload'
          ? fileTarget(frame)
          : { channel_id: frame.channel_id };
    const { message, created } = await this.deps.messages.send(principal, {
      ...target,
      // A file message without words shows the file's name (the service fills it in).
      content: frame.type === 'file_upload' ? (frame.content ?? '') : frame.content,
      message_type: frame.type === 'file_upload' ? 'file' : 'text',
      client_id: frame.client_id,
      reply_to: 'reply_to' in frame ? frame.reply_to : undefined,
      attachments: frame.type === 'file_upload' ? [frame.file_id] : frame.attachments,
    });
    return { message, created };
  }

  private async edit(frame: FrameOf<'edit_message'>, principal: Principal): Promise<AckFields> {
    return { message: await this.deps.messages.edit(principal, frame.message_id, frame.content) };
  }

  private async remove(
    frame: FrameOf<'delete_message'>,
    principal: Principal,
    context: RequestContext,
  ): Promise<AckFields> {
    return { message: await this.deps.messages.remove(principal, frame.message_id, context) };
  }

  private async react(frame: FrameOf<'reaction_update'>, principal: Principal): Promise<AckFields> {
    return this.deps.messages.react(principal, frame.message_id, {
      action: frame.action,
      reaction: frame.reaction_type,
      old: frame.old_reaction_type,
    });
  }

  private async markRead(frame: FrameOf<'mark_read'>, principal: Principal): Promise<AckFields> {
    return this.deps.channels.markRead(principal, frame.channel_id, frame.seq);
  }

  /** Relayed to the channel's other members, never stored; throttled per user and channel. */
  private async relayTyping(frame: FrameOf<'typing'>, principal: Principal): Promise<AckFields> {
    if ((frame.channel_id === undefined) === (frame.recipient_id === undefined)) {
      throw exactlyOneTarget();
    }
    // Throttled by the reference as given, before any lookup: a flood of typing frames costs no queries.
    const reference = frame.channel_id !== undefined ? `c:${frame.channel_id}` : `u:${frame.recipient_id}`;
    if (!this.typing.allow(`${principal.id}:${reference}`, Date.now())) return { relayed: false };
    const channelId = await this.typingChannel(frame, principal);
    this.deps.hub.publish(
      { type: 'typing', channel_id: channelId, user_id: principal.id },
      { kind: 'channel', channelId, exceptUserId: principal.id },
    );
    return { relayed: true };
  }

  private async typingChannel(frame: FrameOf<'typing'>, principal: Principal): Promise<string> {
    if (frame.channel_id !== undefined) {
      // The membership cache answers for channels named by id; names (and misses) ask the service.
      if (this.deps.hub.isMember(principal.id, frame.channel_id)) return frame.channel_id;
      return (await this.deps.channels.memberAccess(principal, frame.channel_id)).channel._id;
    }
    const recipient = await this.deps.users.resolve(frame.recipient_id!);
    const channel = await this.deps.channels.findDirect(principal.id, recipient._id);
    // No conversation yet: nothing to show the recipient until the first message.
    if (!channel) throw new Errors.CHANNEL_NOT_FOUND();
    return channel._id;
  }

  private async setStatus(frame: FrameOf<'set_status'>, principal: Principal): Promise<AckFields> {
    await this.deps.presence.choose(principal.id, frame.status);
    return { status: frame.status };
  }

  /**
   * One `sync` per channel with what changed since the client's position, bounded by count
   * (`resume_limit`) and by size (a quarter of the slow-reader bound, so a sync never trips it). Each is
   * sent as soon as it is read; live events of that channel wait meanwhile and follow it, so the client
   * never gets an older copy after a newer one (it may get the same version twice: apply by change_seq).
   */
  private async resume(frame: FrameOf<'resume'>, principal: Principal, out: FrameOutput): Promise<AckFields> {
    const limit = this.deps.config.resume_limit;
    const byteBudget = this.deps.config.max_buffered_bytes / 4;
    let sent = 0;
    for (const [reference, since] of Object.entries(frame.channels)) {
      // Events carry channel ids: a channel named by name is looked up first, so its hold catches them.
      const channelId = isId(reference)
        ? reference
        : ((await this.deps.connectionWork.run(() => this.deps.channels.find(reference)))?._id ?? reference);
      out.hold(channelId);
      try {
        // The hub is asked when the read starts, not before its turn: a removal while queued counts.
        const changes = await this.deps.connectionWork.run(() =>
          this.deps.messages.changes(
            principal,
            channelId,
            { since_seq: since, limit },
            { hubMember: this.deps.hub.isMember(principal.id, channelId) },
          ),
        );
        let bytes = 0;
        const fitting = changes.messages.findIndex(
          (message) => (bytes += Buffer.byteLength(JSON.stringify(message))) > byteBudget,
        );
        // At least one message per page, so a client always moves forward.
        const messages = fitting === -1 ? changes.messages : changes.messages.slice(0, Math.max(1, fitting));
        const cut = messages.length < changes.messages.length;
        await out.send({
          type: 'sync',
          channel_id: changes.channel_id,
          messages,
          last_seq: cut ? messages.at(-1)!.change_seq : changes.last_seq,
          complete: !changes.has_more && !cut,
        });
      } catch (error) {
        // One channel the caller cannot read does not spoil the others.
        const code = (error as { code?: string }).code;
        if (code !== 'CHANNEL_NOT_FOUND' && code !== 'NOT_CHANNEL_MEMBER') throw error;
        await out.send({ type: 'error', code, message: (error as Error).message, channel_id: reference });
      } finally {
        out.release(channelId);
      }
      sent += 1;
    }
    return { channels: sent };
  }
}

function exactlyOneTarget(): Error {
  return validationError('give exactly one of channel_id and recipient_id', [
    { path: 'channel_id', message: 'give exactly one of channel_id and recipient_id' },
  ]);
}

function fileTarget(frame: FrameOf<'file_upload'>): { channel_id?: string; recipient_id?: string } {
  if ((frame.channel_id === undefined) === (frame.recipient_id === undefined)) {
    throw exactlyOneTarget();
  }
  return frame.channel_id !== undefined
    ? { channel_id: frame.channel_id }
    : { recipient_id: frame.recipient_id };
}
