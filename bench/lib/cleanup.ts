// Cleanup that runs however a benchmark ends: normally, on an error, on Ctrl-C/SIGTERM, or at process exit.
// Each task has an async form (graceful: stop a server, drop a database) and may have a synchronous
// fallback for the `exit` event, where only synchronous work runs (kill a child, remove a folder).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface Task {
  name: string;
  run: () => Promise<void> | void;
  sync?: () => void;
  done: boolean;
}

const tasks: Task[] = [];
let installed = false;
let running: Promise<void> | undefined;

/** Registers cleanup work; tasks run in reverse order of registration (last started, first stopped). */
export function onCleanup(name: string, run: () => Promise<void> | void, sync?: () => void): () => void {
  const task: Task = { name, run, sync, done: false };
  tasks.push(task);
  return () => {
    task.done = true;
  };
}

/** Runs every pending task once, newest first; a failing task is reported and does not stop the others. */
export function runCleanup(): Promise<void> {
  running ??= (async () => {
    for (const task of [...tasks].reverse()) {
      if (task.done) continue;
      task.done = true;
      try {
        await task.run();
      } catch (error) {
        console.error(`[bench] cleanup "${task.name}" failed: ${(error as Error).message}`);
      }
    }
    running = undefined;
  })();
  return running;
}

/** A temporary folder removed at cleanup (and, as a last resort, at process exit). */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  onCleanup(`remove ${dir}`, remove, remove);
  return dir;
}

/** Signals and fatal errors run the cleanup before the process ends. Idempotent. */
export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  let exiting = false;
  const exitAfterCleanup = (code: number) => {
    if (exiting) return;
    exiting = true;
    void runCleanup().finally(() => process.exit(code));
    // A cleanup that hangs must not keep a Ctrl-C'd benchmark alive.
    setTimeout(() => process.exit(code), 15_000).unref();
  };
  // `on`, not `once`: npm and tsx pass a Ctrl-C on to us again, and a second signal without a listener
  // would end the process in the middle of the cleanup.
  process.on('SIGINT', () => {
    if (!exiting) console.error('[bench] interrupted: cleaning up');
    exitAfterCleanup(130);
  });
  process.on('SIGTERM', () => exitAfterCleanup(143));
  process.once('uncaughtException', (error) => {
    console.error('[bench] uncaught error:', error);
    exitAfterCleanup(1);
  });
  process.once('unhandledRejection', (error) => {
    console.error('[bench] unhandled rejection:', error);
    exitAfterCleanup(1);
  });
  process.once('exit', () => {
    for (const task of [...tasks].reverse()) {
      if (task.done || !task.sync) continue;
      try {
        task.sync();
      } catch {
        // best effort: the process is ending
      }
    }
  });
}
