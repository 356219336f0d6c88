import { defineConfig } from 'vitest/config';

/**
 * Suites that disturb the whole machine (they restart dockerd): run after the others, one file at a
 * time, so no other test sees the engine go away under it.
 */
export default defineConfig({
  test: {
    include: ['test/disruptive/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest-disruptive.json' },
  },
});
