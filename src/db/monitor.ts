// Watches the database with a periodic ping so that health is cheap to read and readiness is honest.
// The server starts and keeps running without a database; work that needs one (indexes, bootstrap) runs
// once the first ping succeeds, and the driver reconnects by itself when the database returns.
import type { Db } from 'mongodb';
import type { FastifyBaseLogger } from 'fastify';

export type DatabaseStatus = 'unknown' | 'up' | 'down';

export interface DatabaseState {
  engine: string;
  version: string | null;
  embedded: boolean;
  status: DatabaseStatus;
  latency_ms: number | null;
  checked_at: Date | null;
  error: string | null;
}

type ReadyTask = (db: Db) => Promise<void>;

export class DatabaseMonitor {
  readonly state: DatabaseState;
  private readonly readyTasks: { name: string; run: ReadyTask }[] = [];
  private readyDone = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private pingCommand: Promise<unknown> | undefined;
  private stopped = false;
  private readonly readyWaiters: (() => void)[] = [];
  /** When the current outage began, and when the client was last reset during it. */
  private downSince: number | undefined;
  private lastReset = 0;
  /** The last ping timed out while the database answered other commands. */
  private busy = false;

  constructor(
    private readonly db: Db,
    private readonly options: {
      intervalMs: number;
      timeoutMs: number;
      embedded: boolean;
      engine: string;
      log: FastifyBaseLogger;
      /**
       * (Re)connects the client. The driver closes a client for good when its first automatic connect
       * fails, so a server started without its database must connect again once the database is back.
       */
      connect: () => Promise<unknown>;
      /**
       * Closes the client and connects it again. Called when the database has been unreachable for long
       * (see `ping`): a driver stuck on a dead connection never looks again by itself.
       */
      reset?: () => Promise<unknown>;
      /**
       * Whether the client has had any answer from the database since `since` (a performance.now() time).
       * A ping that times out while other commands are answered waited behind them in the pool's queue:
       * the database is busy, not gone.
       */
      answeredSince?: (since: number) => boolean;
    },
  ) {
    this.state = {
      engine: options.engine,
      version: null,
      embedded: options.embedded,
      status: 'unknown',
      latency_ms: null,
      checked_at: null,
      error: null,
    };
  }

  /** Adds work to run once the database is first reachable (in registration order). */
  onReady(name: string, run: ReadyTask): void {
    this.readyTasks.push({ name, run });
  }

  get isUp(): boolean {
    return this.state.status === 'up';
  }

  /** Reachable, and the start-up tasks (indexes, bootstrap) have completed: safe to take traffic. */
  get isReady(): boolean {
    return this.isUp && this.readyDone;
  }

  /** Resolves when the first ping and the ready tasks have succeeded. */
  whenReady(): Promise<void> {
    if (this.readyDone) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops checking and waits for a check under way, so nothing logs after shutdown. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.inFlight;
  }

  /** A request just failed to reach the database: say so now and look again soon. */
  markUnavailable(error: unknown): void {
    if (this.state.status !== 'down') this.setDown(error);
    void this.check();
  }

  /** One ping, bounded by the configured timeout; concurrent callers share it. */
  check(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.inFlight ??= this.ping().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async ping(): Promise<void> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      // A ping still queued from an earlier check is waited for again rather than joined by another.
      this.pingCommand ??= this.options
        .connect()
        .then(() => this.db.command({ ping: 1 }))
        .finally(() => (this.pingCommand = undefined));
      this.pingCommand.catch(() => undefined); // judged by the race below, or by the next check
      await Promise.race([
        this.pingCommand,
        new Promise((_, reject) => {
          const timedOut = () => reject(new Error(`no answer to ping within ${this.options.timeoutMs} ms`));
          // Judged after the I/O that is waiting has been read (setImmediate runs after the poll phase): if
          // this process was stalled past the timeout, an answer that came in meanwhile wins the race.
          timer = setTimeout(() => setImmediate(timedOut), this.options.timeoutMs);
        }),
      ]);
      const latency = Math.round((performance.now() - started) * 100) / 100;
      if (this.busy) this.options.log.info({ latency_ms: latency }, 'database no longer busy');
      this.busy = false;
      this.setUp(latency);
      if (!this.readyDone) await this.runReadyTasks();
    } catch (error) {
      if (this.stopped) return;
      if (this.options.answeredSince?.(started)) {
        // Marking it down would refuse work the database is doing, and a reset would cut it off.
        const waited = Math.round(performance.now() - started);
        if (!this.busy)
          this.options.log.warn({ waited_ms: waited }, 'database busy: a ping waited behind other work');
        this.busy = true;
        this.setUp(waited);
        return;
      }
      if (this.state.status !== 'down') this.setDown(error);
      this.state.checked_at = new Date();
      await this.resetIfStuck();
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * mongodb 6.22 can wait forever for a write on a socket the database closed (its monitor then never
   * checks again, and every call fails with "connection closed" after the database is back: found by
   * test/reliability/outage.test.ts). After an outage of max(10 s, 5 × timeout), and then at that
   * interval, the client is closed and connected afresh; if the database is still away, that costs a
   * failed connect.
   */
  private async resetIfStuck(): Promise<void> {
    const now = Date.now();
    this.downSince ??= now;
    const patienceMs = Math.max(10_000, 5 * this.options.timeoutMs);
    if (!this.options.reset || now - this.downSince < patienceMs || now - this.lastReset < patienceMs) return;
    this.lastReset = now;
    this.options.log.warn({ down_for_ms: now - this.downSince }, 'database client reset after a long outage');
    await this.options.reset().catch(() => undefined);
  }

  private setUp(latencyMs: number): void {
    if (this.state.status !== 'up') {
      this.options.log.info({ latency_ms: latencyMs, engine: this.state.engine }, 'database reachable');
    }
    Object.assign(this.state, { status: 'up', latency_ms: latencyMs, checked_at: new Date(), error: null });
    this.downSince = undefined;
  }

  private setDown(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.options.log.warn({ err: message }, 'database unreachable');
    Object.assign(this.state, { status: 'down', latency_ms: null, error: message });
  }

  private async runReadyTasks(): Promise<void> {
    try {
      const info = await this.db.admin().command({ buildInfo: 1 });
      this.state.engine = typeof info.ferretdbVersion === 'string' ? 'ferretdb' : 'mongodb';
      this.state.version = String(info.ferretdbVersion ?? info.version ?? '') || null;
      for (const task of this.readyTasks) await task.run(this.db);
    } catch (error) {
      // Not fatal: the next successful ping runs the tasks again (each is idempotent).
      this.options.log.warn({ err: error }, 'database start-up tasks failed; will retry');
      return;
    }
    this.readyDone = true;
    this.readyWaiters.splice(0).forEach((resolve) => resolve());
  }
}
