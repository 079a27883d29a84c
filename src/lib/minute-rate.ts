// How many times something happened in the last minute: 60 one-second buckets in a ring, so counting is
// one array write and reading is a sum of 60 numbers, whatever the rate.
const BUCKETS = 60;

export class MinuteRate {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private readonly seconds = new Array<number>(BUCKETS).fill(-1);

  constructor(private readonly nowMs: () => number = Date.now) {}

  add(count = 1): void {
    const second = Math.floor(this.nowMs() / 1000);
    const slot = second % BUCKETS;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.counts[slot] = 0;
    }
    this.counts[slot]! += count;
  }

  /** Events in the 60 seconds up to now. */
  perMinute(): number {
    const now = Math.floor(this.nowMs() / 1000);
    let total = 0;
    for (let slot = 0; slot < BUCKETS; slot += 1) {
      if (now - this.seconds[slot]! < BUCKETS) total += this.counts[slot]!;
    }
    return total;
  }
}
