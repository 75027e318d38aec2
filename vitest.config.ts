import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

const kitSrc = fileURLToPath(new URL('./services/kit/src/', import.meta.url));

// The Debian nats-server 2.9 the machine runs on 4222: the compatibility target.
const legacyNats = process.env.LEGACY_NATS_URL ?? 'nats://127.0.0.1:4222';

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
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: files run two at a time; each file owns its namespace and database schema.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-output/vitest.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'nats-current',
          include: ['services/*/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'test/**/*.test.ts'],
          // Starts the current nats-server (scripts/tools.sh) on a spare port for the whole run.
          globalSetup: ['test/setup/nats-current.ts'],
        },
      },
      {
        extends: true,
        test: {
          // Compatibility leg: the consumer runtime, dead letters and the reconcile planner on 2.9.
          name: 'nats-2.9',
          include: [
            'services/kit/test/consumer*.test.ts',
            'services/kit/test/consumer/**/*.test.ts',
            'services/kit/test/dlq/**/*.test.ts',
            'services/kit/test/reconcile/**/*.test.ts',
          ],
          env: { TEST_NATS_URL: legacyNats, NATS_SERVER_BIN: '/usr/sbin/nats-server' },
        },
      },
    ],
  },
});
