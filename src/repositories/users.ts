// MongoDB access for users. Plain objects in, plain objects out; no business rules here.
import type { Collection, Db, Filter } from 'mongodb';
import type { Role } from '../auth/permissions.js';
import { COLLECTIONS } from '../db/collections.js';
import { isId } from '../lib/ids.js';
import { KeyedQueue } from '../lib/keyed-queue.js';
import { escapeRegex } from '../lib/search-terms.js';

export type UserStatus = 'active' | 'disabled';

export interface UserDoc {
  _id: string;
  email: string;
  email_lower: string;
  name: string;
  name_lower: string;
  /** Lower-cased, accent-free words of the name and the email, for prefix search. */
  search_terms: string[];
  department: string;
  team: string | null;
  designation: string | null;
  roles: Role[];
  status: UserStatus;
  password_hash: string | null;
  avatar_file_id: string | null;
  created_at: Date;
  updated_at: Date;
  last_seen_at: Date | null;
  /** The presence the user chose (`away`, `busy`); absent or `online` otherwise. */
  presence_status?: 'online' | 'away' | 'busy';
}

export interface DirectoryQuery {
  /** Every one must be the prefix of some word of the name or email. */
  prefixes: string[];
  department?: string;
  after?: { name_lower: string; id: string };
  limit: number;
}

export class UsersRepository {
  private readonly users: Collection<UserDoc>;

  /**
   * Writes to one user take turns in this process: FerretDB does not isolate concurrent updates of a
   * document, so a "last seen" touch racing an admin's change (disabling the account) could undo it.
   */
  private readonly writes = new KeyedQueue();

  constructor(db: Db) {
    this.users = db.collection<UserDoc>(COLLECTIONS.users);
  }

  insert(user: UserDoc): Promise<unknown> {
    return this.users.insertOne(user);
  }

  findById(id: string): Promise<UserDoc | null> {
    return this.users.findOne({ _id: id });
  }

  /** A user by id or email (case-insensitive); null for anything else. */
  findByReference(reference: string): Promise<UserDoc | null> {
    if (reference.includes('@')) return this.findByEmail(reference);
    return isId(reference) ? this.findById(reference) : Promise.resolve(null);
  }

  findByEmail(email: string): Promise<UserDoc | null> {
    return this.users.findOne({ email_lower: email.toLowerCase() });
  }

  /** Applies `set` and returns the updated user (null when it does not exist). */
  update(id: string, set: Partial<UserDoc>): Promise<UserDoc | null> {
    return this.writes.run(id, () =>
      this.users.findOneAndUpdate({ _id: id }, { $set: set }, { returnDocument: 'after' }),
    );
  }

  touchLastSeen(id: string, at: Date): Promise<unknown> {
    return this.writes.run(id, () => this.users.updateOne({ _id: id }, { $set: { last_seen_at: at } }));
  }

  findByIds(ids: readonly string[]): Promise<UserDoc[]> {
    return this.users.find({ _id: { $in: [...ids] } }).toArray();
  }

  /** Every active user's id and department (department and general channel membership). */
  activeMembershipFacts(department?: string): Promise<Pick<UserDoc, '_id' | 'department'>[]> {
    return this.users
      .find(
        { status: 'active', ...(department !== undefined ? { department } : {}) },
        { projection: { _id: 1, department: 1 } },
      )
      .toArray();
  }

  /** Active users an @mention could mean: by email, or by a word of their name or email. */
  mentionCandidates(emails: readonly string[], words: readonly string[], limit: number): Promise<UserDoc[]> {
    return this.users
      .find({
        status: 'active',
        $or: [{ email_lower: { $in: [...emails] } }, { search_terms: { $in: [...words] } }],
      })
      .limit(limit)
      .toArray();
  }

  async activeAdminIds(): Promise<string[]> {
    const rows = await this.users
      .find({ roles: 'admin', status: 'active' }, { projection: { _id: 1 } })
      .toArray();
    return rows.map((row) => row._id);
  }

  countAdmins(): Promise<number> {
    return this.users.countDocuments({ roles: 'admin', status: 'active' });
  }

  /** Directory page sorted by name then id; `after` is the last entry of the previous page. */
  directory(query: DirectoryQuery): Promise<UserDoc[]> {
    const and: Filter<UserDoc>[] = [];
    for (const prefix of query.prefixes) and.push({ search_terms: { $regex: `^${escapeRegex(prefix)}` } });
    if (query.department) and.push({ department: query.department });
    if (query.after) {
      and.push({
        $or: [
          { name_lower: { $gt: query.after.name_lower } },
          { name_lower: query.after.name_lower, _id: { $gt: query.after.id } },
        ],
      });
    }
    return this.users
      .find(and.length ? { $and: and } : {})
      .sort({ name_lower: 1, _id: 1 })
      .limit(query.limit)
      .toArray();
  }

  list(limit: number): Promise<UserDoc[]> {
    return this.users.find({}).sort({ email_lower: 1 }).limit(limit).toArray();
  }
}
