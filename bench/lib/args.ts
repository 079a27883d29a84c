// Command-line flags shared by every benchmark: `npm run bench:<name> -- --quick`.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface BenchArgs {
  /** A short run (finishes within 60 s) for CI and quick checks. */
  quick: boolean;
  /** Flags a benchmark added for itself. */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
}

export function parseBenchArgs(extra: ParseArgsConfig['options'] = {}): BenchArgs {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { quick: { type: 'boolean', default: false }, ...extra },
      strict: true,
      allowPositionals: false,
    });
    return { quick: values.quick === true, values };
  } catch (error) {
    console.error(`[bench] ${(error as Error).message}`);
    process.exit(2);
  }
}
