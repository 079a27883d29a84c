// Every collection and index Switchboard uses, declared in one place and created at start-up.
// Later issues add their collections here; every query on a hot path must be covered by one of these.
import type { CreateIndexesOptions, Db, IndexSpecification } from 'mongodb';

export const COLLECTIONS = {
  /** One document per installation fact (schema version, when the database was first used). */
  meta: 'meta',
  users: 'users',
  sessions: 'sessions',
  loginThrottle: 'login_throttle',
  passwordTokens: 'password_tokens',
  loginAttempts: 'login_attempts',
  claims: 'claims',
  channels: 'channels',
  memberships: 'memberships',
  userChannels: 'user_channels',
  messages: 'messages',
  /** "<sender>:<client_id>" → message id: finds a retried send's message with an id lookup. */
  messageClientIds: 'message_client_ids',
  notifications: 'notifications',
  announcements: 'announcements',
  files: 'files',
  /** Counters in minute, hour and day buckets, one document per series, bucket and instance. */
  analyticsBuckets: 'analytics_buckets',
  /** One document per error code and route: first and last seen, a sample request id. */
  analyticsErrors: 'analytics_errors',
  /** Who was active each day (senders and connectors), one document per day and instance. */
  analyticsActive: 'analytics_active',
  /** The tamper-evident audit trail: append-only, one hash chain ordered by seq (services/audit.ts). */
  audit: 'audit',
  /** What the detection plugin observed, alerted on or blocked (src/security). */
  securityEvents: 'security_events',
  /** The address + user agent pairs each user logged in from (hashed): the new-login-context rule. */
  loginContexts: 'login_contexts',
} as const;

export interface IndexDeclaration {
  collection: string;
  key: IndexSpecification;
  options: CreateIndexesOptions & { name: string };
}

export const INDEXES: readonly IndexDeclaration[] = [
  { collection: COLLECTIONS.meta, key: { key: 1 }, options: { name: 'meta_key_unique', unique: true } },
  // Login and lookups by email (case-insensitive through the lower-cased copy).
  {
    collection: COLLECTIONS.users,
    key: { email_lower: 1 },
    options: { name: 'users_email_unique', unique: true },
  },
  // Directory: sorted by name, filtered by department, searched by word prefix.
  { collection: COLLECTIONS.users, key: { name_lower: 1, _id: 1 }, options: { name: 'users_name' } },
  {
    collection: COLLECTIONS.users,
    key: { department: 1, name_lower: 1 },
    options: { name: 'users_department_name' },
  },
  { collection: COLLECTIONS.users, key: { search_terms: 1 }, options: { name: 'users_search_terms' } },
  { collection: COLLECTIONS.users, key: { roles: 1 }, options: { name: 'users_roles' } },
  {
    collection: COLLECTIONS.sessions,
    key: { user_id: 1, revoked_at: 1 },
    options: { name: 'sessions_user_open' },
  },
  { collection: COLLECTIONS.passwordTokens, key: { user_id: 1 }, options: { name: 'password_tokens_user' } },
  // Housekeeping sweeps (services/housekeeping.ts).
  { collection: COLLECTIONS.sessions, key: { expires_at: 1 }, options: { name: 'sessions_expires' } },
  {
    collection: COLLECTIONS.loginThrottle,
    key: { updated_at: 1 },
    options: { name: 'login_throttle_updated' },
  },
  // Conversations. A channel's name is unique (direct channels get a name derived from the pair, so there
  // is one per pair); memberships have the id "<channel>:<user>".
  {
    collection: COLLECTIONS.channels,
    key: { name_lower: 1 },
    options: { name: 'channels_name_unique', unique: true },
  },
  {
    collection: COLLECTIONS.channels,
    key: { kind: 1, name_lower: 1 },
    options: { name: 'channels_kind_name' },
  },
  { collection: COLLECTIONS.channels, key: { department: 1 }, options: { name: 'channels_department' } },
  {
    collection: COLLECTIONS.memberships,
    key: { user_id: 1, channel_id: 1 },
    options: { name: 'memberships_user' },
  },
  {
    collection: COLLECTIONS.memberships,
    key: { channel_id: 1, user_id: 1 },
    options: { name: 'memberships_channel' },
  },
  // A message's id is "<channel>-<seq>" (inserting it claims the seq); change_seq is claimed under a
  // unique key. The database, not a counter, decides who gets a number (see repositories/messages.ts).
  {
    collection: COLLECTIONS.messages,
    key: { channel_id: 1, seq: 1 },
    options: { name: 'messages_channel_seq_unique', unique: true },
  },
  {
    collection: COLLECTIONS.messages,
    key: { channel_id: 1, change_seq: 1 },
    options: { name: 'messages_channel_change_unique', unique: true },
  },
  // Idempotent sends: client_key is the sender's client_id, or the message id when none was given.
  {
    collection: COLLECTIONS.messages,
    key: { sender_id: 1, client_key: 1 },
    options: { name: 'messages_sender_client_unique', unique: true },
  },
  { collection: COLLECTIONS.messages, key: { terms: 1, _id: -1 }, options: { name: 'messages_terms' } },
  {
    collection: COLLECTIONS.messages,
    key: { channel_id: 1, _id: -1 },
    options: { name: 'messages_channel_id' },
  },
  {
    collection: COLLECTIONS.notifications,
    key: { user_id: 1, _id: -1 },
    options: { name: 'notifications_user' },
  },
  {
    collection: COLLECTIONS.announcements,
    key: { published_at: 1, due_at: 1 },
    options: { name: 'announcements_due' },
  },
  // Analytics: a series' buckets over a time range; retention removes old buckets by granularity.
  {
    collection: COLLECTIONS.analyticsBuckets,
    key: { series: 1, granularity: 1, start: 1 },
    options: { name: 'analytics_series_start' },
  },
  {
    collection: COLLECTIONS.analyticsBuckets,
    key: { granularity: 1, start: 1 },
    options: { name: 'analytics_retention' },
  },
  { collection: COLLECTIONS.analyticsActive, key: { day: 1 }, options: { name: 'analytics_active_day' } },
  // Files: one user's stored bytes (quota), and uploads never attached (the orphan sweep).
  {
    collection: COLLECTIONS.files,
    key: { uploader_id: 1, deleted_at: 1 },
    options: { name: 'files_uploader' },
  },
  {
    collection: COLLECTIONS.files,
    key: { attached: 1, created_at: 1 },
    options: { name: 'files_unattached' },
  },
  {
    collection: COLLECTIONS.announcements,
    key: { created_at: -1 },
    options: { name: 'announcements_created' },
  },
  // Audit trail: seq is unique so that two writers cannot both extend the chain from the same record;
  // the others serve the admin filters (newest first within each).
  { collection: COLLECTIONS.audit, key: { seq: 1 }, options: { name: 'audit_seq_unique', unique: true } },
  { collection: COLLECTIONS.audit, key: { actor_id: 1, seq: -1 }, options: { name: 'audit_actor' } },
  { collection: COLLECTIONS.audit, key: { target_id: 1, seq: -1 }, options: { name: 'audit_target' } },
  { collection: COLLECTIONS.audit, key: { action: 1, seq: -1 }, options: { name: 'audit_action' } },
  { collection: COLLECTIONS.audit, key: { at: 1 }, options: { name: 'audit_at' } },
  // Admin filters (newest first by id) and the retention sweep.
  {
    collection: COLLECTIONS.securityEvents,
    key: { principal: 1, _id: -1 },
    options: { name: 'security_principal' },
  },
  {
    collection: COLLECTIONS.securityEvents,
    key: { action: 1, _id: -1 },
    options: { name: 'security_action' },
  },
  { collection: COLLECTIONS.securityEvents, key: { at: 1 }, options: { name: 'security_at' } },
  { collection: COLLECTIONS.loginContexts, key: { user_id: 1 }, options: { name: 'login_contexts_user' } },
];

/** Creates the declared indexes; safe to run on every start (createIndex is idempotent). */
export async function ensureIndexes(db: Db): Promise<void> {
  for (const index of INDEXES) {
    await db.collection(index.collection).createIndex(index.key, index.options);
  }
}

export const SCHEMA_VERSION = 1;

/** Records, once, that this database belongs to Switchboard and which schema version it holds. */
export async function ensureInstallation(db: Db, now: Date): Promise<{ created_at: Date }> {
  const meta = db.collection<{ key: string; created_at: Date; schema_version: number }>(COLLECTIONS.meta);
  await meta.updateOne(
    { key: 'installation' },
    { $setOnInsert: { key: 'installation', created_at: now, schema_version: SCHEMA_VERSION } },
    { upsert: true },
  );
  const doc = await meta.findOne({ key: 'installation' });
  return { created_at: doc!.created_at };
}
