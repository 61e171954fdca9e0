import { defineConfig } from 'vitest/config';

// Tests import the TypeScript sources directly; subprocess-based tests (crash tests, CLI tests)
// run the compiled `dist/` build, which `npm test` produces first through its `pretest` script.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
