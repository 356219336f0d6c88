import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Suites that restart the Docker engine run afterwards, alone (vitest.disruptive.config.ts).
    exclude: [...configDefaults.exclude, 'test/disruptive/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Shell and container tests spawn real processes; two cores do not like many at once.
    maxWorkers: 2,
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
  },
});
