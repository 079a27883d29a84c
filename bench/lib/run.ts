// The frame of every benchmark: cleanup on any exit, the body, then the RESULT line as the very last
// output (after children and temporary folders are gone, so nothing prints after it).
import { installCleanupHandlers, runCleanup } from './cleanup.js';
import { printResult } from './report.js';

export async function runBench(bench: string, body: () => Promise<Record<string, unknown>>): Promise<void> {
  installCleanupHandlers();
  let result: Record<string, unknown> | undefined;
  let failure: unknown;
  try {
    result = await body();
  } catch (error) {
    failure = error;
  }
  await runCleanup();
  if (failure !== undefined || result === undefined) {
    console.error(`[bench] ${bench} failed:`, failure);
    process.exitCode = 1;
  } else {
    printResult({ bench, ...result });
  }
  // Nothing should be left running; if a stray handle is, do not hang a CI job on it.
  setTimeout(() => {
    console.error('[bench] a handle kept the process alive after cleanup: exiting');
    process.exit();
  }, 5_000).unref();
}
