// The database work that sockets coming and going cause (authentication, the channel list, the chosen
// presence, resume reads, last-seen writes, the periodic session checks) goes through one gate: at most
// `concurrency` operations at a time, so a reconnect storm queues here rather than in the driver's pool or
// in the database, where every send would wait behind it.
//
// With so few places, one database operation that never answers would hold a place for good, and two
// would stop every socket from ever connecting again. So each operation gets `timeoutMs`, counted from
// when it starts (not from when it was queued): past that its caller gets 503 DATABASE_UNAVAILABLE (the
// socket is refused, the client retries) and the place goes to the next operation. The abandoned
// operation still holds a driver connection until it ends; the pool bounds those.
import pLimit, { type LimitFunction } from 'p-limit';
import { Errors } from '../errors.js';

export interface ConnectionWorkStats {
  /** Operations under way. */
  running: number;
  /** Operations waiting for a place. */
  queued: number;
  /** Operations that ran past the time limit since start. */
  timed_out: number;
}

export class ConnectionWork {
  private readonly limit: LimitFunction;
  private timedOut = 0;

  constructor(
    readonly concurrency: number,
    private readonly timeoutMs: number,
  ) {
    this.limit = pLimit(concurrency);
  }

  /** Runs `operation` when a place is free, and gives up on it after the time limit. */
  run<T>(operation: () => Promise<T>): Promise<T> {
    return this.limit(() => this.withinTimeLimit(operation()));
  }

  stats(): ConnectionWorkStats {
    return { running: this.limit.activeCount, queued: this.limit.pendingCount, timed_out: this.timedOut };
  }

  private withinTimeLimit<T>(operation: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.timedOut += 1;
        reject(new Errors.DATABASE_UNAVAILABLE());
      }, this.timeoutMs);
    });
    return Promise.race([operation, limit]).finally(() => clearTimeout(timer));
  }
}
