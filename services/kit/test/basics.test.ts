import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { baseConfig, RetryDelays, Names, parseDuration, readSetting } from '@orderflow/kit';
import { platformTopology } from '../../../test/support/topology.js';

describe('settings', () => {
  test('secrets come from env or from the file named by <NAME>_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-'));
    writeFileSync(join(dir, 'pw'), 's3cret\n');
    expect(readSetting('NATS_PASSWORD', { NATS_PASSWORD_FILE: join(dir, 'pw') })).toBe('s3cret');
    expect(readSetting('NATS_PASSWORD', { NATS_PASSWORD: 'direct', NATS_PASSWORD_FILE: join(dir, 'pw') })).toBe('direct');
    expect(readSetting('NATS_PASSWORD', {})).toBeUndefined();
  });

  test('base config defaults follow shared/README.md', () => {
    const c = baseConfig('order-service', 3001, {});
    expect(c).toMatchObject({
      port: 3001,
      nats: { servers: ['nats://127.0.0.1:4222'] },
      databaseUrl: undefined,
      databaseSchema: 'order_service',
      dataDir: '.data/order-service',
      namespace: '',
    });
    expect(baseConfig('x', 1, { NATS_URL: 'nats://a:1, nats://b:2' }).nats.servers).toEqual(['nats://a:1', 'nats://b:2']);
  });
});

describe('backoff', () => {
  test('retry delays come from cockatiel: never above the cap, starting again after reset()', () => {
    const d = new RetryDelays({ initialMs: 100, maxMs: 5000 });
    const first = Array.from({ length: 20 }, () => d.next());
    for (const ms of first) expect(ms > 0 && ms <= 5000).toBe(true);
    // Decorrelated jitter: the first delay is near the initial one, later ones reach the cap's range.
    expect(first[0]).toBeLessThan(200);
    expect(Math.max(...first.slice(10))).toBeGreaterThan(1000);
    expect(d.attempts).toBe(20);
    d.reset();
    expect(d.attempts).toBe(0);
    expect(d.next()).toBeLessThan(200);
  });
});

describe('topology', () => {
  test('namespace prefixes subjects and stream names; empty namespace is production naming', () => {
    const prod = platformTopology();
    expect(prod.streams.map((s) => [s.name, s.subjects[0]])).toEqual([
      ['ORDERS', 'orders.>'],
      ['INVENTORY', 'inventory.>'],
      ['PAYMENTS', 'payments.>'],
      ['DLQ', 'dlq.>'],
    ]);
    const t = platformTopology({ namespace: 't_x' });
    expect(t.streams[0]).toMatchObject({ name: 'T_X_ORDERS', subjects: ['t_x.orders.>'] });
    const c = t.consumers.find((x) => x.durableName === 'inventory-orders')!;
    expect(c).toMatchObject({
      streamName: 'T_X_ORDERS',
      filterSubject: 't_x.orders.>',
      maxDeliver: 5,
      deadLetter: { subject: 't_x.dlq.T_X_ORDERS.inventory-orders' },
    });
    expect(c.backoff!.length).toBeLessThanOrEqual(c.maxDeliver!);
    expect(new Names('t_x').eventType('t_x.orders.created')).toBe('orders.created');
    expect(() => new Names('Bad-NS')).toThrow(/namespace/);
  });

  test('durations', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(() => parseDuration('30 sec')).toThrow(/invalid duration/);
  });
});
