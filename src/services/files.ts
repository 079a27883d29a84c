// Files: verified uploads, who may download, sharing in messages, deletion and the sweeps that keep
// records and bytes consistent. Bytes go through the FileStorage interface (files/storage.ts); the
// multipart parsing stays in the route, which hands over the parts as a plain async iterable.
//
// An upload streams through one pass that counts (size limit and quota), hashes (SHA-256), keeps the
// first 64 KiB (for the signature check) and validates UTF-8 for text, into a temporary object. Only a
// complete, verified upload is committed under a generated key, and its record is written after that.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { can, type Actor } from '../auth/permissions.js';
import type { Config } from '../config/index.js';
import { Errors, validationError, withRetryAfter } from '../errors.js';
import {
  checkSignature,
  declaresActiveContent,
  ruleFor,
  Utf8Checker,
  type FileKind,
} from '../files/file-types.js';
import type { FileLinks } from '../files/links.js';
import { checkFileName } from '../files/names.js';
import type { FileStorage, PendingUpload } from '../files/storage.js';
import { isId, newId } from '../lib/ids.js';
import type { EventLimiter } from '../lib/sliding-window.js';
import type { FileDoc, FilesRepository } from '../repositories/files.js';
import type { AttachmentDoc } from '../repositories/messages.js';
import type { AuditService } from './audit.js';
import type { ChannelsService } from './channels.js';
import type { Principal, RequestContext } from './context.js';
import type { AttachmentSource, MessagesService } from './messages.js';

/** Enough of the start of a file for file-type to recognise it (OOXML needs its first zip entries). */
const HEAD_BYTES = 64 * 1024;
/** A temporary upload or unrecorded bytes older than this belong to no running upload. */
const IN_FLIGHT_GRACE_MS = 5 * 60 * 1000;
const SWEEP_BATCH = 500;
const USAGE_READ_INTERVAL_MS = 60_000;
const FILE_SYSTEM_CALLS = new Set(['open', 'write', 'writev', 'close', 'fsync']);
const MAX_USAGE_ENTRIES = 10_000;

/** One part of a multipart upload, as the route hands it over. */
export type UploadPart =
  | { type: 'field'; name: string; value: string; truncated: boolean }
  | { type: 'file'; name: string; filename: string; declaredType: string; stream: Readable };

export interface PublicFile {
  id: string;
  file_name: string;
  file_type: string;
  file_size: number;
  sha256: string;
  /** Signed link: downloads without an Authorization header until it expires. */
  file_url: string;
  created_at: string;
}

export interface ConsistencyReport {
  temporary_removed: number;
  records_without_bytes: string[];
  bytes_without_records: string[];
}

/**
 * Counts, hashes and inspects an upload's chunks as they go by on their way to storage. It listens
 * beside the pipe rather than sitting in it as a Transform: one stream stage less for every chunk.
 */
class UploadInspector {
  size = 0;
  private readonly hash = createHash('sha256');
  private readonly headChunks: Buffer[] = [];
  private headLength = 0;
  readonly utf8: Utf8Checker | null;

  constructor(
    private readonly limit: number,
    checkText: boolean,
  ) {
    this.utf8 = checkText ? new Utf8Checker() : null;
  }

  /** Takes the next chunk; false once the upload is over the limit (the caller stops it). */
  take(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.limit) return false;
    this.hash.update(chunk);
    if (this.headLength < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - this.headLength);
      this.headChunks.push(part);
      this.headLength += part.length;
    }
    this.utf8?.push(chunk);
    return true;
  }

  get head(): Buffer {
    return Buffer.concat(this.headChunks);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

export class FilesService implements AttachmentSource {
  /**
   * Bytes of uploads that passed the quota check and are being recorded, per user, so parallel uploads
   * cannot overrun the quota together (in this process; across instances it may overshoot by a file).
   */
  private readonly reserved = new Map<string, number>();
  private readonly usage = new Map<string, { bytes: number; readAt: number }>();
  /** Counts uploads and deletes, to tell whether one happened during a usage read. */
  private usageChanges = 0;
  private storedListener: ((file: { uploaderId: string; size: number }) => void) | null = null;

  constructor(
    private readonly deps: {
      files: FilesRepository;
      storage: FileStorage;
      channels: ChannelsService;
      messages: MessagesService;
      audit: AuditService;
      links: FileLinks;
      /** FILE_UPLOADS_PER_HOUR per uploader (see plugins/app/limits.ts). */
      uploadLimiter: EventLimiter;
      config: Config;
      log: { info(object: object, message: string): void; warn(object: object, message: string): void };
    },
  ) {
    this.urlFor = this.urlFor.bind(this);
  }

  /** Told of every file stored (the analytics count uploads and bytes). */
  onStored(listener: (file: { uploaderId: string; size: number }) => void): void {
    this.storedListener = listener;
  }

  toPublic(file: FileDoc): PublicFile {
    return {
      id: file._id,
      file_name: file.file_name,
      file_type: file.file_type,
      file_size: file.file_size,
      sha256: file.sha256,
      file_url: this.urlFor(file._id),
      created_at: file.created_at.toISOString(),
    };
  }

  urlFor(fileId: string): string {
    return this.deps.links.urlFor(fileId);
  }

  // ---- uploading ----

  /**
   * Stores one uploaded file. `openParts(maxBytes)` starts reading the request once the hourly allowance
   * is checked; `maxBytes` is the most one file may hold. The quota is checked when the size is known.
   */
  async upload(
    principal: Principal,
    openParts: (maxBytes: number) => AsyncIterable<UploadPart>,
  ): Promise<PublicFile> {
    const { config } = this.deps;
    let refundAllowance = async () => undefined as void;
    if (config.rate_limit.enabled) {
      const allowance = await this.deps.uploadLimiter.take(principal.id, Date.now());
      if (allowance.wait > 0)
        throw withRetryAfter(new Errors.RATE_LIMITED(`${allowance.wait} seconds`), allowance.wait);
      refundAllowance = allowance.refund;
    }
    // The quota check needs the user's stored bytes: they are read while the body streams in.
    const storedBytes = this.storedBytesOf(principal.id);
    storedBytes.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    const limit = config.files.max_file_size;
    let pending: PendingUpload | undefined;
    let reservedBytes = 0;
    let stored = false;
    try {
      let received: Awaited<ReturnType<FilesService['receive']>> | undefined;
      let channelId: string | undefined;
      for await (const part of openParts(limit)) {
        if (part.type === 'field') {
          if (part.name !== 'channel_id') continue; // other form fields carry nothing we use
          if (channelId !== undefined || part.truncated || !part.value.trim()) {
            throw validationError('channel_id is invalid', [
              { path: 'channel_id', message: 'must be given once, as a channel id or name' },
            ]);
          }
          // Checked as soon as it arrives: a refused channel stops the upload before its bytes are read.
          channelId = (await this.deps.channels.memberAccess(principal, part.value.trim())).channel._id;
          continue;
        }
        if (part.name !== 'file') {
          part.stream.resume();
          throw validationError('Unexpected file field', [
            { path: part.name, message: 'send the file in the field named "file"' },
          ]);
        }
        if (received) {
          part.stream.resume();
          throw new Errors.TOO_MANY_FILES();
        }
        const accepted = this.acceptPart(part);
        pending = await this.deps.storage.begin();
        received = await this.receive(part, accepted, pending, limit);
      }
      if (!received || !pending) throw new Errors.FILE_MISSING();

      // Stored files plus this user's uploads that passed this check and are being recorded.
      const used = (await storedBytes) + (this.reserved.get(principal.id) ?? 0);
      if (used + received.size > config.files.user_quota) {
        throw new Errors.STORAGE_QUOTA_EXCEEDED(config.files.user_quota);
      }
      reservedBytes = received.size;
      this.reserve(principal.id, reservedBytes);

      const id = newId();
      const doc: FileDoc = {
        _id: id,
        uploader_id: principal.id,
        file_name: received.name,
        file_type: received.mime,
        kind: received.kind,
        file_size: received.size,
        sha256: received.sha256,
        storage_key: id,
        created_at: new Date(),
        uploaded_to: channelId ?? null,
        attached: false,
        shared_in: [],
        message_ids: [],
        deleted_at: null,
        deleted_by: null,
      };
      await pending.commit(doc.storage_key);
      try {
        await this.deps.files.insert(doc);
      } catch (error) {
        await this.deps.storage.remove(doc.storage_key).catch(() => undefined);
        throw error;
      }
      stored = true;
      this.usageChanged(principal.id, doc.file_size);
      this.storedListener?.({ uploaderId: principal.id, size: doc.file_size });
      return this.toPublic(doc);
    } finally {
      if (reservedBytes) this.reserve(principal.id, -reservedBytes);
      if (!stored) {
        await pending?.abort().catch(() => undefined);
        // A refused or failed upload does not use up the hourly allowance.
        await refundAllowance();
      }
    }
  }

  /**
   * A user's stored bytes: read from the database at most once a minute, and kept current in between by
   * this process's own uploads and deletes (another instance's are seen at the next read). On FerretDB the
   * read scans every file record, so reading it for every upload would slow every upload.
   */
  private async storedBytesOf(userId: string): Promise<number> {
    const known = this.usage.get(userId);
    if (known && Date.now() - known.readAt < USAGE_READ_INTERVAL_MS) return known.bytes;
    const changesBefore = this.usageChanges;
    const bytes = await this.deps.files.bytesUsedBy(userId);
    // A change that landed while reading may or may not be in the answer: then it is not remembered.
    if (this.usageChanges === changesBefore) {
      if (this.usage.size >= MAX_USAGE_ENTRIES) this.usage.clear();
      this.usage.set(userId, { bytes, readAt: Date.now() });
    }
    return bytes;
  }

  private usageChanged(userId: string, delta: number): void {
    this.usageChanges += 1;
    const known = this.usage.get(userId);
    if (known) known.bytes += delta;
  }

  private reserve(userId: string, bytes: number): void {
    const total = (this.reserved.get(userId) ?? 0) + bytes;
    if (total > 0) this.reserved.set(userId, total);
    else this.reserved.delete(userId);
  }

  /** The name and type rule of a file part, or a refusal before any of its bytes are stored. */
  private acceptPart(part: Extract<UploadPart, { type: 'file' }>): {
    name: string;
    extension: string;
    rule: ReturnType<typeof ruleFor>;
  } {
    const { config } = this.deps;
    try {
      const { name, extension } = checkFileName(part.filename);
      if (!extension || !config.files.allowed_extensions.includes(extension)) {
        throw new Errors.FILE_TYPE_NOT_ALLOWED(
          `Files of type .${extension || '(none)'} are not accepted here`,
        );
      }
      const rule = ruleFor(extension);
      if (rule.kind === 'active' && !config.files.allow_active_content) {
        throw new Errors.FILE_TYPE_NOT_ALLOWED(
          `.${extension} files can run code in a browser and are not accepted`,
        );
      }
      if (rule.kind !== 'active' && declaresActiveContent(part.declaredType)) {
        throw new Errors.FILE_TYPE_NOT_ALLOWED(
          `A .${extension} file sent as ${part.declaredType} is refused`,
        );
      }
      return { name, extension, rule };
    } catch (error) {
      part.stream.resume(); // let the rest of the body go by
      throw error;
    }
  }

  /** Streams the bytes to `pending` through the inspector, and verifies what arrived. */
  private async receive(
    part: Extract<UploadPart, { type: 'file' }>,
    { name, extension, rule }: ReturnType<FilesService['acceptPart']>,
    pending: PendingUpload,
    limit: number,
  ): Promise<{ name: string; mime: string; kind: FileKind; size: number; sha256: string }> {
    const inspector = new UploadInspector(limit, rule.kind === 'text' || rule.kind === 'active');
    try {
      // pipe() has attached its own 'data' listener by now and starts the flow on the next tick, so
      // this listener sees every chunk, right after it was handed to storage.
      const copied = pipeline(part.stream, pending.stream);
      part.stream.on('data', (chunk: Buffer) => {
        if (!inspector.take(chunk)) part.stream.destroy(new Errors.FILE_TOO_LARGE(limit));
      });
      await copied;
    } catch (error) {
      if (error instanceof Errors.FILE_TOO_LARGE) throw error;
      // The file system failing (disk full, permissions) is ours; anything else is the request body
      // breaking off or being malformed, which is the client's.
      if (FILE_SYSTEM_CALLS.has((error as { syscall?: string }).syscall ?? '')) throw error;
      throw new Errors.INVALID_MULTIPART();
    }
    if (inspector.size === 0) throw new Errors.FILE_EMPTY();
    let mime = rule.mime;
    if (rule.kind === 'binary') {
      const verdict = await checkSignature(extension, rule, inspector.head);
      if ('refused' in verdict) throw new Errors.FILE_TYPE_NOT_ALLOWED(verdict.refused);
      mime = verdict.mime;
    } else if (inspector.utf8) {
      inspector.utf8.finish();
      if (inspector.utf8.problem) throw new Errors.FILE_TYPE_NOT_ALLOWED(inspector.utf8.problem);
    }
    return { name, mime, kind: rule.kind, size: inspector.size, sha256: inspector.digest() };
  }

  // ---- reading ----

  /**
   * The file if the caller may download it: its uploader, a member of a channel it was shared in, or
   * (without a principal) the holder of a valid signed link. FILE_NOT_FOUND to everyone else, so file
   * ids reveal nothing.
   */
  async fileForDownload(
    principal: Principal | null,
    fileId: string,
    link: { exp?: string; sig?: string },
  ): Promise<FileDoc> {
    if (principal === null) {
      // The link is judged before the file is looked up: a forged link learns nothing about the id.
      const verdict = this.deps.links.check(fileId, link.exp, link.sig);
      if (verdict === 'expired') throw new Errors.FILE_LINK_EXPIRED();
      if (verdict === 'invalid') throw new Errors.FILE_LINK_INVALID();
    }
    const file = isId(fileId) ? await this.deps.files.findById(fileId) : null;
    if (!file || file.deleted_at) throw new Errors.FILE_NOT_FOUND(fileId);
    if (principal === null || (await this.mayRead(principal, file))) return file;
    throw new Errors.FILE_NOT_FOUND(fileId);
  }

  /** The file's bytes (or a range of them); FILE_NOT_FOUND when the record has lost its bytes. */
  async open(file: FileDoc, range?: { start: number; end: number }): Promise<Readable> {
    const body = await this.deps.storage.open(file.storage_key, range);
    if (body) return body;
    // Repaired at the next start (checkConsistency); until then the file is simply not there.
    this.deps.log.warn({ file_id: file._id, storage_key: file.storage_key }, 'file record without bytes');
    throw new Errors.FILE_NOT_FOUND(file._id);
  }

  private async mayRead(actor: Actor, file: FileDoc): Promise<boolean> {
    if (file.uploader_id === actor.id) return true;
    for (const channelId of file.shared_in) {
      if (await this.isMember(actor, channelId)) return true;
    }
    return false;
  }

  private async isMember(actor: Actor, channelId: string): Promise<boolean> {
    try {
      await this.deps.channels.memberAccess(actor, channelId);
      return true;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'NOT_CHANNEL_MEMBER' || code === 'CHANNEL_NOT_FOUND') return false;
      throw error;
    }
  }

  // ---- sharing in messages (AttachmentSource) ----

  async resolve(actor: Actor, fileIds: string[]): Promise<AttachmentDoc[]> {
    const attachments: AttachmentDoc[] = [];
    for (const fileId of fileIds) {
      const file = await this.deps.files.findById(fileId);
      if (!file || file.deleted_at) throw new Errors.FILE_NOT_FOUND(fileId);
      if (file.uploader_id !== actor.id) {
        throw (await this.mayRead(actor, file))
          ? new Errors.FILE_NOT_OWNED()
          : new Errors.FILE_NOT_FOUND(fileId);
      }
      attachments.push({
        id: file._id,
        file_name: file.file_name,
        file_type: file.file_type,
        file_size: file.file_size,
      });
    }
    return attachments;
  }

  /** Shares checked files in a channel: its members may open them from now on. */
  async share(fileIds: string[], channelId: string): Promise<void> {
    for (const fileId of fileIds) {
      if (!(await this.deps.files.shareIn(fileId, channelId))) throw new Errors.FILE_NOT_FOUND(fileId);
    }
  }

  async attached(messageId: string, fileIds: string[]): Promise<void> {
    await this.deps.files.recordMessage(fileIds, messageId);
  }

  // ---- deleting ----

  /** The uploader or an administrator deletes a file: record marked, bytes removed, messages updated. */
  async remove(principal: Principal, fileId: string, context: RequestContext): Promise<void> {
    const file = isId(fileId) ? await this.deps.files.findById(fileId) : null;
    if (!file || file.deleted_at) throw new Errors.FILE_NOT_FOUND(fileId);
    const byUploader = file.uploader_id === principal.id;
    if (!byUploader && !can(principal, 'file.delete_any')) {
      throw (await this.mayRead(principal, file))
        ? new Errors.FORBIDDEN()
        : new Errors.FILE_NOT_FOUND(fileId);
    }
    const deleted = await this.deps.files.markDeleted(file._id, principal.id, new Date());
    if (!deleted) throw new Errors.FILE_NOT_FOUND(fileId); // deleted meanwhile
    await this.discard(deleted);
    this.deps.audit.record(
      {
        action: byUploader ? 'file.delete' : 'file.delete_moderated',
        actor_id: principal.id,
        target_type: 'file',
        target_id: file._id,
        details: {
          uploader_id: file.uploader_id,
          file_name: file.file_name,
          file_size: file.file_size,
          sha256: file.sha256,
          shared_in: file.shared_in,
        },
      },
      context,
    );
  }

  /** After a record is marked deleted: its bytes go and the messages showing it say so. */
  private async discard(file: FileDoc): Promise<void> {
    this.usageChanged(file.uploader_id, -file.file_size);
    await this.deps.storage.remove(file.storage_key);
    for (const messageId of file.message_ids) {
      await this.deps.messages.markAttachmentDeleted(messageId, file._id).catch((error: unknown) => {
        this.deps.log.warn(
          { err: error, file_id: file._id, message_id: messageId },
          'attachment not marked deleted',
        );
      });
    }
  }

  // ---- keeping records and bytes consistent ----

  /** Removes uploads never attached to a message within files.orphan_ttl_s; returns how many. */
  async sweepUnattached(now: Date): Promise<number> {
    const before = new Date(now.getTime() - this.deps.config.files.orphan_ttl_s * 1000);
    let removed = 0;
    for (;;) {
      const batch = await this.deps.files.findUnattachedBefore(before, SWEEP_BATCH);
      for (const file of batch) {
        const deleted = await this.deps.files.markDeleted(file._id, null, now, 'unattached', {
          onlyUnattached: true,
        });
        if (!deleted) continue; // attached meanwhile
        await this.discard(deleted);
        removed += 1;
      }
      if (batch.length < SWEEP_BATCH) return removed;
    }
  }

  /**
   * At start-up: removes temporary uploads a crash left behind, marks records whose bytes are gone as
   * deleted (their messages show the file as deleted), and removes bytes no live record names.
   */
  async checkConsistency(now: Date): Promise<ConsistencyReport> {
    const settled = new Date(now.getTime() - IN_FLIGHT_GRACE_MS);
    const report: ConsistencyReport = {
      temporary_removed: await this.deps.storage.sweepTemporary(settled),
      records_without_bytes: [],
      bytes_without_records: [],
    };
    const liveKeys = new Set<string>();
    for await (const record of this.deps.files.liveKeys()) {
      liveKeys.add(record.storage_key);
      if (await this.deps.storage.stat(record.storage_key)) continue;
      const deleted = await this.deps.files.markDeleted(record._id, null, now, 'missing_bytes');
      if (!deleted) continue;
      report.records_without_bytes.push(record._id);
      await this.discard(deleted);
    }
    for await (const object of this.deps.storage.list()) {
      // Bytes committed moments ago may belong to an upload whose record is being written.
      if (liveKeys.has(object.key) || object.modifiedAt >= settled) continue;
      await this.deps.storage.remove(object.key);
      report.bytes_without_records.push(object.key);
    }
    return report;
  }
}
