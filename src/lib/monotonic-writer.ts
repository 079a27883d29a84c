// Writes a value that only ever moves forward (a channel's last seq, a member's read position), one write
// at a time per key, coalescing callers: while one write is in flight, later callers wait for the next
// write, which carries the highest value asked for. A caller's promise settles once a write covering its
// value has finished, so "the response says read" means "the database says read".
//
// One writer per key also keeps a value from moving back: FerretDB does not isolate a conditional update
// ("set if lower") against a concurrent one, so two such updates racing could leave the smaller value.
interface Waiter {
  value: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface KeyState {
  target: number;
  waiters: Waiter[];
}

export class MonotonicWriter {
  private readonly states = new Map<string, KeyState>();

  constructor(private readonly write: (key: string, value: number) => Promise<unknown>) {}

  advance(key: string, value: number): Promise<void> {
    const existing = this.states.get(key);
    const state = existing ?? { target: value, waiters: [] };
    state.target = Math.max(state.target, value);
    const promise = new Promise<void>((resolve, reject) => state.waiters.push({ value, resolve, reject }));
    if (!existing) {
      this.states.set(key, state);
      void this.drain(key, state);
    }
    return promise;
  }

  private async drain(key: string, state: KeyState): Promise<void> {
    while (state.waiters.length) {
      const value = state.target;
      const covered = state.waiters.filter((waiter) => waiter.value <= value);
      state.waiters = state.waiters.filter((waiter) => waiter.value > value);
      try {
        await this.write(key, value);
        for (const waiter of covered) waiter.resolve();
      } catch (error) {
        for (const waiter of covered) waiter.reject(error);
      }
    }
    this.states.delete(key);
  }
}
