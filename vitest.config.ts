import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const kitSrc = fileURLToPath(new URL('./services/kit/src/', import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run the kit from source; built services (child processes) use dist via package exports.
    alias: [
      { find: /^@orderflow\/kit$/, replacement: `${kitSrc}index.ts` },
      { find: /^@orderflow\/kit\/testing$/, replacement: `${kitSrc}testing/index.ts` },
      { find: /^@orderflow\/kit\/otel$/, replacement: `${kitSrc}otel.ts` },
    ],
  },
  test: {
    include: ['services/*/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: files run two at a time; each file owns its namespace and database schema.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-output/vitest.json' }]] : ['default'],
  },
});
