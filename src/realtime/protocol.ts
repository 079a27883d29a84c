// The WebSocket protocol: every frame a client may send, as one zod discriminated union, and the parser
// that turns raw text into a frame or into a stable error code. Shared by the hub and the OpenAPI text.
import { z } from 'zod';
import { Errors } from '../errors.js';
import { userRef } from '../schemas/common.js';
import {
  attachmentIds,
  channelRef,
  clientId,
  content,
  fileId,
  messageId,
  reactionType,
} from '../schemas/conversations.js';

/** A client's own id for a frame: echoed as `ref` in the one `ack` or `error` that answers it. */
const frameId = z.string().min(1).max(64, { error: 'must be at most 64 characters' });
const seq = z.number().int({ error: 'must be a whole number' }).min(0).max(Number.MAX_SAFE_INTEGER);

/** Fields every frame may carry. Unknown fields are ignored (the seed's clients send `sender_id` etc.). */
const frame = <const T extends string, S extends z.ZodRawShape>(types: readonly T[], shape: S) =>
  z.object({ type: z.literal(types), id: frameId.optional(), ...shape });

const sendFields = {
  content,
  client_id: clientId.optional(),
  reply_to: messageId.nullable().optional(),
  attachments: attachmentIds.optional(),
};

export const PRESENCE_STATUSES = ['online', 'away', 'busy'] as const;
/** The most channels one `resume` may name; a client with more sends several. */
export const MAX_RESUME_CHANNELS = 500;

export const clientFrame = z.discriminatedUnion('type', [
  frame(['personal_message'], { recipient_id: userRef, ...sendFields }),
  frame(['chat_message', 'channel_message'], { channel_id: channelRef, ...sendFields }),
  frame(['file_upload'], {
    file_id: fileId,
    channel_id: channelRef.optional(),
    recipient_id: userRef.optional(),
    content: content.optional(),
    client_id: clientId.optional(),
  }),
  frame(['reaction_update'], {
    message_id: messageId,
    reaction_type: reactionType,
    action: z.enum(['add', 'remove', 'replace'], { error: 'must be add, remove or replace' }),
    old_reaction_type: reactionType.optional(),
  }),
  frame(['edit_message'], { message_id: messageId, content }),
  frame(['delete_message'], { message_id: messageId }),
  frame(['mark_read'], { channel_id: channelRef, seq }),
  frame(['typing'], { channel_id: channelRef.optional(), recipient_id: userRef.optional() }),
  frame(['set_status'], {
    status: z.enum(PRESENCE_STATUSES, { error: 'must be online, away or busy' }),
  }),
  frame(['get_all_statuses'], {}),
  frame(['resume'], {
    channels: z
      .record(channelRef, seq)
      .refine((channels) => Object.keys(channels).length <= MAX_RESUME_CHANNELS, {
        error: `must name at most ${MAX_RESUME_CHANNELS} channels`,
      }),
  }),
  frame(['ping'], {}),
]);

export type ClientFrame = z.infer<typeof clientFrame>;
export type FrameType = ClientFrame['type'];
export type FrameOf<T extends FrameType> = Extract<ClientFrame, { type: T }>;

export const FRAME_TYPES: readonly string[] = clientFrame.options.flatMap((option) =>
  [...option.shape.type.values].map(String),
);
/** Also the bounded set of `type` labels in the metrics. */
export const KNOWN_FRAME_TYPES: ReadonlySet<string> = new Set(FRAME_TYPES);

export type ParsedFrame =
  | { ok: true; frame: ClientFrame }
  | {
      ok: false;
      ref: string | undefined;
      error: Error & { details?: { path: string; message: string }[] };
      /** The JSON object, when the text was one (the detection plugin still scores its fields). */
      raw?: Record<string, unknown>;
    };

/** Raw text to a frame, or the error to answer with (the socket stays open either way). */
export function parseFrame(text: string): ParsedFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, ref: undefined, error: new Errors.INVALID_JSON() };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, ref: undefined, error: new Errors.INVALID_FRAME() };
  }
  const record = raw as Record<string, unknown>;
  // A usable id is echoed even when the rest of the frame is wrong, so the client can match the error.
  const ref = frameId.safeParse(record.id).success ? (record.id as string) : undefined;
  if (typeof record.type !== 'string')
    return { ok: false, ref, raw: record, error: new Errors.INVALID_FRAME() };
  if (!KNOWN_FRAME_TYPES.has(record.type)) {
    return {
      ok: false,
      ref,
      raw: record,
      error: new Errors.UNKNOWN_TYPE(JSON.stringify(record.type.slice(0, 40))),
    };
  }
  const parsed = clientFrame.safeParse(raw);
  if (!parsed.success) {
    const details = parsed.error.issues.map((issue) => ({
      path: issue.path.join('.'),
      message: issue.message,
    }));
    const message = `Invalid ${record.type} frame: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`;
    return {
      ok: false,
      ref,
      raw: record,
      error: Object.assign(new Errors.VALIDATION_FAILED(message), { details }),
    };
  }
  return { ok: true, frame: parsed.data };
}

/** A server frame, serialized once: the same buffer goes to every socket that receives it. */
export function encodeFrame(frame: { type: string; [field: string]: unknown }): Buffer {
  return Buffer.from(JSON.stringify(frame));
}
