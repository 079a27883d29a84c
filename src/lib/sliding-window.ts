// A per-key allowance of `limit` events in any `windowMs` (a sliding log: the times of the last `limit`
// events per key). Exact at window edges, unlike a fixed window that lets twice the limit through
// across a boundary. Kept in this process: with several instances each enforces it on its own.
export class SlidingWindowLimiter {
  private readonly log = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Takes one event for `key`: 0 when allowed (and counted), else the seconds until one is free. */
  take(key: string, now: number): number {
    const times = (this.log.get(key) ?? []).filter((time) => now - time < this.windowMs);
    if (times.length >= this.limit) {
      this.log.set(key, times);
      return Math.max(1, Math.ceil((times[0]! + this.windowMs - now) / 1000));
    }
    times.push(now);
    this.log.set(key, times);
    if (this.log.size > 100_000) this.prune(now);
    return 0;
  }

  /** Gives back an event taken for something that then failed. */
  refund(key: string, time: number): void {
    const times = this.log.get(key);
    const index = times?.lastIndexOf(time) ?? -1;
    if (times && index >= 0) times.splice(index, 1);
  }

  private prune(now: number): void {
    for (const [key, times] of this.log) {
      if (!times.some((time) => now - time < this.windowMs)) this.log.delete(key);
    }
  }
}
