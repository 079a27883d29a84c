// Writes values that only ever move forward (a channel's last seq and change position, a member's read
// position), one write at a time per document, coalescing callers: while one write is in flight, later
// callers wait for the next write, which carries the highest value of each field asked for. A caller's
// promise settles once a write covering its values has finished, so "the response says read" means "the
// database says read".
//
// One write at a time per document matters on FerretDB: it rewrites whole documents without isolating
// concurrent updates, so two updates of different fields of one document racing can undo each other.
// The writes themselves use $max, which moves a value forward only.
//
// With `delayMs`, a key's first change waits that long before it is written, so that a busy key is
// written a few times a second however many callers advance it (callers that must not wait can
// ignore the promise; `flush` writes at once).
export type Marks = Record<string, number>;

interface Waiter {
  values: Marks;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface KeyState {
  target: Marks;
  waiters: Waiter[];
  timer: NodeJS.Timeout | null;
  /** The write loop, while it runs. */
  running: Promise<void> | null;
}

function covers(written: Marks, wanted: Marks): boolean {
  return Object.entries(wanted).every(([field, value]) => (written[field] ?? -Infinity) >= value);
}

export class MonotonicWriter {
  private readonly states = new Map<string, KeyState>();

  constructor(
    private readonly write: (key: string, values: Marks) => Promise<unknown>,
    private readonly options: { delayMs?: number } = {},
  ) {}

  advance(key: string, values: Marks, { flush = false } = {}): Promise<void> {
    let state = this.states.get(key);
    if (!state) {
      state = { target: {}, waiters: [], timer: null, running: null };
      this.states.set(key, state);
    }
    for (const [field, value] of Object.entries(values)) {
      state.target[field] = Math.max(state.target[field] ?? -Infinity, value);
    }
    const promise = new Promise<void>((resolve, reject) => state.waiters.push({ values, resolve, reject }));
    if (state.running) return promise; // the running loop picks this up
    const delayMs = flush ? 0 : (this.options.delayMs ?? 0);
    if (delayMs === 0) this.start(key, state);
    else state.timer ??= setTimeout(() => this.start(key, state), delayMs);
    return promise;
  }

  /** The value a field is being moved to and not yet written, if any. */
  pending(key: string, field: string): number | undefined {
    return this.states.get(key)?.target[field];
  }

  /** Writes everything pending now and waits for it (at shutdown). */
  async flushAll(): Promise<void> {
    await Promise.all(
      [...this.states.entries()].map(([key, state]) => state.running ?? this.start(key, state)),
    );
  }

  private start(key: string, state: KeyState): Promise<void> {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    state.running ??= this.drain(key, state);
    return state.running;
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
