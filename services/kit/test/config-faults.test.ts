import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { baseConfig } from '@orderflow/kit';

test('fault settings: documented defaults, and each one read from the environment', () => {
  const d = baseConfig('order-service', 3001, {});
  expect(d.db).toEqual({
    statementTimeoutMs: 30_000,
    lockTimeoutMs: 10_000,
    idleInTransactionTimeoutMs: 60_000,
    keepAliveInitialDelayMs: 10_000,
    connectTimeoutMs: 5_000,
    poolMax: 10,
    serverOptions: '',
  });
  expect(d).toMatchObject({ retryAfterSeconds: 5, natsRebuildTimeoutMs: 120_000, nats: { passwordFile: undefined } });

  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'pw'), 'from-file\n');
  const c = baseConfig('order-service', 3001, {
    DB_STATEMENT_TIMEOUT_MS: '1000',
    DB_LOCK_TIMEOUT_MS: '0',
    DB_IDLE_TX_TIMEOUT_MS: '2000',
    DB_KEEPALIVE_MS: '3000',
    DB_CONNECT_TIMEOUT_MS: '4000',
    DB_POOL_MAX: '3',
    PGOPTIONS: '-c work_mem=8MB',
    HTTP_RETRY_AFTER_SECONDS: '9',
    NATS_REBUILD_TIMEOUT_MS: '0',
    NATS_PASSWORD_FILE: join(dir, 'pw'),
  });
  expect(c.db).toEqual({
    statementTimeoutMs: 1000,
    lockTimeoutMs: 0,
    idleInTransactionTimeoutMs: 2000,
    keepAliveInitialDelayMs: 3000,
    connectTimeoutMs: 4000,
    poolMax: 3,
    serverOptions: '-c work_mem=8MB',
  });
  // The file is named for the manager to read again at each connect; its value is there too.
  expect(c).toMatchObject({
    retryAfterSeconds: 9,
    natsRebuildTimeoutMs: 0,
    nats: { passwordFile: join(dir, 'pw'), password: 'from-file' },
  });
  expect(() => baseConfig('x', 1, { DB_LOCK_TIMEOUT_MS: 'soon' })).toThrow(/DB_LOCK_TIMEOUT_MS/);
});
