// Writes values that only ever move forward (a channel's last seq and change position, a member's read
// position), one write at a time per document, coalescing callers: while one write is in flight, later
// callers wait for the next write, which carries the highest value of each field asked for. A caller's
// promise settles once a write covering its values has finished, so "the response says read" means "the
// database says read".
//
// One write at a time per document matters on FerretDB: it rewrites whole documents without isolating
// concurrent updates, so two updates of different fields of one document racing can undo each other.
// The writes themselves use $max, which moves a value forward only.
export type Marks = Record<string, number>;

interface Waiter {
  values: Marks;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface KeyState {
  target: Marks;
  waiters: Waiter[];
}

function covers(written: Marks, wanted: Marks): boolean {
  return Object.entries(wanted).every(([field, value]) => (written[field] ?? -Infinity) >= value);
}

export class MonotonicWriter {
  private readonly states = new Map<string, KeyState>();

  constructor(private readonly write: (key: string, values: Marks) => Promise<unknown>) {}

  advance(key: string, values: Marks): Promise<void> {
    const existing = this.states.get(key);
    const state = existing ?? { target: {}, waiters: [] };
    for (const [field, value] of Object.entries(values)) {
      state.target[field] = Math.max(state.target[field] ?? -Infinity, value);
    }
    const promise = new Promise<void>((resolve, reject) => state.waiters.push({ values, resolve, reject }));
    if (!existing) {
      this.states.set(key, state);
      void this.drain(key, state);
    }
    return promise;
  }

  private async drain(key: string, state: KeyState): Promise<void> {
    while (state.waiters.length) {
      const values = { ...state.target };
      const covered = state.waiters.filter((waiter) => covers(values, waiter.values));
      state.waiters = state.waiters.filter((waiter) => !covers(values, waiter.values));
      try {
        await this.write(key, values);
        for (const waiter of covered) waiter.resolve();
      } catch (error) {
        for (const waiter of covered) waiter.reject(error);
      }
    }
    this.states.delete(key);
  }
}
