// The bounded, in-process memory the stateful rules need: how many times something happened to a key
// lately, and how many distinct things. Keys are evicted least-recently-used, so an attacker rotating
// addresses cannot grow them without limit; each key keeps at most `cap` timestamps.
import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../lib/bounded-cache.js';

/** Events per key within a sliding window. */
export class RecentCounter {
  private readonly times: LRUCache<string, number[]>;

  constructor(
    private readonly windowMs: number,
    private readonly cap: number,
    maxKeys: number,
  ) {
    this.times = boundedCache(maxKeys);
  }

  /** Counts one event; returns the events of this key within the window, this one included. */
  hit(key: string, now: number): number {
    let times = this.times.get(key);
    if (!times) this.times.set(key, (times = []));
    while (times.length > 0 && now - times[0]! >= this.windowMs) times.shift();
    if (times.length >= this.cap) times.shift();
    times.push(now);
    return times.length;
  }

  forget(key: string): void {
    this.times.delete(key);
  }
}

/** Distinct values per key within a sliding window (accounts tried from one address, DM recipients). */
export class DistinctCounter {
  private readonly seen: LRUCache<string, Map<string, number>>;

  constructor(
    private readonly windowMs: number,
    private readonly cap: number,
    maxKeys: number,
  ) {
    this.seen = boundedCache(maxKeys);
  }

  /** Records `value` for `key`; returns the distinct values within the window and whether this one is new. */
  add(key: string, value: string, now: number): { distinct: number; isNew: boolean } {
    let values = this.seen.get(key);
    if (!values) this.seen.set(key, (values = new Map()));
    for (const [seenValue, at] of values) if (now - at >= this.windowMs) values.delete(seenValue);
    const isNew = !values.has(value);
    values.delete(value); // re-inserted last: the oldest stays first for the cap
    values.set(value, now);
    if (values.size > this.cap) values.delete(values.keys().next().value!);
    return { distinct: values.size, isNew };
  }
}

/**
 * A user's request rate against their own moving baseline: requests are counted in 10-second slots, and
 * the baseline is an exponentially weighted average of past slots (idle slots count as zero).
 */
export class RateBaseline {
  private static readonly SLOT_MS = 10_000;
  private readonly users: LRUCache<
    string,
    { slot: number; count: number; baseline: number; slots: number; fired: boolean }
  >;

  constructor(
    /** How many times the baseline counts as "far above". */
    private readonly factor: number,
    /** Requests per slot below which nothing is unusual, whatever the baseline. */
    private readonly floor: number,
    maxKeys: number,
  ) {
    this.users = boundedCache(maxKeys);
  }

  /** Counts a request; true once per slot when the slot's count goes far above the baseline. */
  hit(key: string, now: number): boolean {
    const slot = Math.floor(now / RateBaseline.SLOT_MS);
    let state = this.users.get(key);
    if (!state) {
      this.users.set(key, (state = { slot, count: 0, baseline: 0, slots: 0, fired: false }));
    } else if (state.slot !== slot) {
      const idle = Math.min(slot - state.slot - 1, 100);
      state.baseline = state.baseline * 0.8 + state.count * 0.2;
      if (idle > 0) state.baseline *= 0.8 ** idle;
      state.slots += 1 + idle;
      state.slot = slot;
      state.count = 0;
      state.fired = false;
    }
    state.count += 1;
    // Six slots (a minute) of history before a baseline means anything.
    if (state.fired || state.slots < 6) return false;
    if (state.count > Math.max(this.floor, state.baseline * this.factor)) {
      state.fired = true;
      return true;
    }
    return false;
  }
}
