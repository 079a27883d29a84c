// `npm run test:reliability`: the reliability suite (test/reliability), real server processes against a
// real database server and Redis, sized by RELIABILITY_PROFILE (ci | full, see test/reliability/profile.ts).
// Files run one at a time: each one loads the machine on purpose, and its figures must be its own.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/reliability/report-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 20 * 60_000,
    hookTimeout: 5 * 60_000,
    teardownTimeout: 60_000,
  },
});
