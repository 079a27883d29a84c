// MongoDB access for analytics: counters in time buckets, and one record per error group.
//
// A bucket document holds one series (`errors`, `connections`) for one minute, hour or day, written by
// one server instance: `_id` "<series>|<granularity>|<start ISO>|<instance>". Each instance adds to its
// own documents only, so no two writers ever `$inc` the same document at once (FerretDB does not isolate
// concurrent `$inc`); readers add the instances up.
import type { Collection, Db } from 'mongodb';
import { COLLECTIONS } from '../db/collections.js';

export type Granularity = 'minute' | 'hour' | 'day';

export interface BucketDoc {
  _id: string;
  series: string;
  granularity: Granularity;
  start: Date;
  instance: string;
  /** Added up over the bucket. Keys are escaped (no "." or "$"; see `fieldKey`). */
  counts: Record<string, number>;
  /** The highest value seen in the bucket. */
  peaks?: Record<string, number>;
}

export interface ErrorGroupDoc {
  /** "<code> <route>" */
  _id: string;
  code: string;
  route: string;
  first_seen: Date;
  last_seen: Date;
  sample_request_id: string;
}

export interface ActiveUsersDoc {
  /** "<day ISO>|<instance>" */
  _id: string;
  day: Date;
  instance: string;
  senders: string[];
  connectors: string[];
}

export interface BucketChange {
  series: string;
  granularity: Granularity;
  start: Date;
  counts: Map<string, number>;
  peaks: Map<string, number>;
}

/** A counter name usable as a document field: "." and "$" would be read as paths and operators. */
export function fieldKey(name: string): string {
  return name.replaceAll('%', '%25').replaceAll('.', '%2E').replaceAll('$', '%24');
}

export function fromFieldKey(key: string): string {
  return key.replaceAll('%2E', '.').replaceAll('%24', '$').replaceAll('%25', '%');
}

export class AnalyticsRepository {
  private readonly buckets: Collection<BucketDoc>;
  private readonly groups: Collection<ErrorGroupDoc>;
  private readonly active: Collection<ActiveUsersDoc>;

  constructor(db: Db) {
    this.buckets = db.collection<BucketDoc>(COLLECTIONS.analyticsBuckets);
    this.groups = db.collection<ErrorGroupDoc>(COLLECTIONS.analyticsErrors);
    this.active = db.collection<ActiveUsersDoc>(COLLECTIONS.analyticsActive);
  }

  async addToBucket(change: BucketChange, instance: string): Promise<void> {
    const start = change.start.toISOString();
    const inc: Record<string, number> = {};
    for (const [name, value] of change.counts) inc[`counts.${fieldKey(name)}`] = value;
    const max: Record<string, number> = {};
    for (const [name, value] of change.peaks) max[`peaks.${fieldKey(name)}`] = value;
    await this.buckets.updateOne(
      { _id: `${change.series}|${change.granularity}|${start}|${instance}` },
      {
        ...(Object.keys(inc).length ? { $inc: inc } : {}),
        ...(Object.keys(max).length ? { $max: max } : {}),
        $setOnInsert: {
          series: change.series,
          granularity: change.granularity,
          start: change.start,
          instance,
        },
      },
      { upsert: true },
    );
  }

  /** Buckets of a series and granularity starting in [from, to), every instance's. */
  bucketsBetween(series: string, granularity: Granularity, from: Date, to: Date): Promise<BucketDoc[]> {
    return this.buckets.find({ series, granularity, start: { $gte: from, $lt: to } }).toArray();
  }

  /**
   * Widens a group's first and last sighting to include this batch and keeps the batch's request id as
   * the sample (with several instances, the last writer's: a sample, not necessarily the newest).
   */
  async noteErrorGroup(group: ErrorGroupDoc): Promise<void> {
    await this.groups.updateOne(
      { _id: group._id },
      {
        $setOnInsert: { code: group.code, route: group.route },
        $min: { first_seen: group.first_seen },
        $max: { last_seen: group.last_seen },
        $set: { sample_request_id: group.sample_request_id },
      },
      { upsert: true },
    );
  }

  errorGroups(ids: readonly string[]): Promise<ErrorGroupDoc[]> {
    return ids.length ? this.groups.find({ _id: { $in: [...ids] } }).toArray() : Promise.resolve([]);
  }

  async addActiveUsers(
    day: Date,
    instance: string,
    users: { senders: readonly string[]; connectors: readonly string[] },
  ): Promise<void> {
    await this.active.updateOne(
      { _id: `${day.toISOString()}|${instance}` },
      {
        $addToSet: { senders: { $each: [...users.senders] }, connectors: { $each: [...users.connectors] } },
        $setOnInsert: { day, instance },
      },
      { upsert: true },
    );
  }

  /** Every instance's active-user documents for the days in [from, to). */
  activeUsersBetween(from: Date, to: Date): Promise<ActiveUsersDoc[]> {
    return this.active.find({ day: { $gte: from, $lt: to } }).toArray();
  }

  async deleteActiveUsersBefore(before: Date): Promise<number> {
    return (await this.active.deleteMany({ day: { $lt: before } })).deletedCount;
  }

  /** Removes buckets of a granularity that started before `before`; returns how many. */
  async deleteBucketsBefore(granularity: Granularity, before: Date): Promise<number> {
    return (await this.buckets.deleteMany({ granularity, start: { $lt: before } })).deletedCount;
  }
}
