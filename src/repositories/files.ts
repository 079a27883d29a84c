// MongoDB access for file records. The bytes live in the storage backend (files/storage.ts) under
// `storage_key`; a record is written only after its bytes are in place, and marked deleted before they
// are removed, so a crash between the two leaves bytes without a live record (the start-up check
// removes those) and never a live record without bytes.
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';
import type { FileKind } from '../files/file-types.js';

export interface FileDoc {
  _id: string;
  uploader_id: string;
  /** The user's name for it, sanitised (files/names.ts): for display only. */
  file_name: string;
  /** The MIME type decided by the server from the extension and the bytes. */
  file_type: string;
  kind: FileKind;
  file_size: number;
  sha256: string;
  storage_key: string;
  created_at: Date;
  /** The channel named at upload, if any (checked, informative only: access comes from sharing). */
  uploaded_to: string | null;
  /** Shared in a message at least once (unattached uploads are swept after files.orphan_ttl_s). */
  attached: boolean;
  /** Channels it was shared in: their members may download it. */
  shared_in: string[];
  /** Messages that show it, to mark when the file is deleted. */
  message_ids: string[];
  deleted_at: Date | null;
  deleted_by: string | null;
  /** Why a file was deleted without a person asking (`missing_bytes`, `orphan`). */
  deleted_reason?: string;
}

export class FilesRepository {
  private readonly files: Collection<FileDoc>;

  constructor(db: Db) {
    this.files = db.collection<FileDoc>(COLLECTIONS.files);
  }

  async insert(doc: FileDoc): Promise<void> {
    await this.files.insertOne(doc);
  }

  findById(id: string): Promise<FileDoc | null> {
    return this.files.findOne({ _id: id });
  }

  /** Bytes kept by a user's live files (their quota). */
  async bytesUsedBy(uploaderId: string): Promise<number> {
    const rows = await this.files
      .find({ uploader_id: uploaderId, deleted_at: null }, { projection: { file_size: 1 } })
      .toArray();
    return rows.reduce((total, row) => total + row.file_size, 0);
  }

  /** Records that a live file is shared in a channel; false when the file is no longer live. */
  async shareIn(id: string, channelId: string): Promise<boolean> {
    const result = await this.files.updateOne(
      { _id: id, deleted_at: null },
      { $set: { attached: true }, $addToSet: { shared_in: channelId } },
    );
    return result.matchedCount === 1;
  }

  async recordMessage(ids: readonly string[], messageId: string): Promise<void> {
    for (const id of ids) await this.files.updateOne({ _id: id }, { $addToSet: { message_ids: messageId } });
  }

  /**
   * Marks a live file deleted; null when it was not live (already deleted, or never existed), or with
   * `onlyUnattached` when it was shared meanwhile.
   */
  async markDeleted(
    id: string,
    deletedBy: string | null,
    at: Date,
    reason?: string,
    options: { onlyUnattached?: boolean } = {},
  ): Promise<FileDoc | null> {
    return this.files.findOneAndUpdate(
      { _id: id, deleted_at: null, ...(options.onlyUnattached ? { attached: false } : {}) },
      { $set: { deleted_at: at, deleted_by: deletedBy, ...(reason ? { deleted_reason: reason } : {}) } },
      { returnDocument: 'after' },
    );
  }

  /** Live uploads never shared, created before `before`. */
  findUnattachedBefore(before: Date, limit: number): Promise<FileDoc[]> {
    return this.files
      .find({ attached: false, created_at: { $lt: before }, deleted_at: null })
      .limit(limit)
      .toArray();
  }

  /** Every live record's id and storage key (the start-up consistency check). */
  liveKeys(): AsyncIterable<Pick<FileDoc, '_id' | 'storage_key' | 'created_at'>> {
    return this.files.find(
      { deleted_at: null },
      { projection: { _id: 1, storage_key: 1, created_at: 1 } },
    ) as unknown as AsyncIterable<Pick<FileDoc, '_id' | 'storage_key' | 'created_at'>>;
  }
}
