/**
 * The shared test harness pieces: the child-process launcher (ready on a fact, last words on a
 * failed start, SIGTERM then SIGKILL) and the Prometheus text reader behind parseMetrics.
 */
import { describe, expect, test } from 'vitest';
import { parsePrometheus } from '../src/prometheus-text.js';
import { launchProcess, parseMetrics } from '../src/testing/index.js';

describe('launchProcess', () => {
  test('ready once the fact holds; stdout lines and JSON logs kept; SIGTERM stops it with its exit code', async () => {
    const script = `
      console.log(JSON.stringify({ msg: 'started', n: 1 }));
      console.log('not json');
      console.error('to stderr');
      process.on('SIGTERM', () => { console.log(JSON.stringify({ msg: 'stopping' })); process.exit(3); });
      setInterval(() => {}, 1000);`;
    const p = await launchProcess({ name: 'echoer', args: ['-e', script], ready: (self) => self.stdout.includes('not json') });
    expect(p.running()).toBe(true);
    expect(p.logs()).toEqual([{ msg: 'started', n: 1 }]);
    expect(p.stderr).toEqual(['to stderr']);
    expect(await p.stop()).toBe(3);
    expect(p.running()).toBe(false);
    expect(p.logs().at(-1)).toEqual({ msg: 'stopping' });
    expect(await p.stop()).toBe(3); // again: nothing more to do
  });

  test('a process that exits before it is ready fails the start with its own last words', async () => {
    await expect(
      launchProcess({
        name: 'quitter',
        args: ['-e', "console.error('no config: giving up'); process.exit(7)"],
        ready: () => false,
        readyTimeoutMs: 30_000,
      }),
    ).rejects.toThrow(/quitter exited \(code 7[\s\S]*no config: giving up/);
  });

  test('a process that ignores SIGTERM is killed after the deadline', async () => {
    const p = await launchProcess({
      name: 'stubborn',
      args: ['-e', "process.on('SIGTERM', () => console.log('ignored')); console.log('up'); setInterval(() => {}, 1000)"],
    });
    await expect.poll(() => p.stdout.includes('up')).toBe(true);
    await p.stop({ killAfterMs: 200 });
    expect((await p.exited).signal).toBe('SIGKILL');
  });

  test('inheritEnv: false gives the child only the environment passed', async () => {
    process.env.LAUNCHER_TEST_SECRET = 'inherited';
    try {
      const p = await launchProcess({
        name: 'env',
        args: ['-e', 'console.log(JSON.stringify({ secret: process.env.LAUNCHER_TEST_SECRET ?? null, own: process.env.OWN }))'],
        inheritEnv: false,
        env: { OWN: 'x' },
      });
      await p.exited;
      expect(p.logs()).toEqual([{ secret: null, own: 'x' }]);
    } finally {
      delete process.env.LAUNCHER_TEST_SECRET;
    }
  });
});

describe('Prometheus text', () => {
  const TEXT = [
    '# HELP orderflow_nats_consumed_total Messages consumed',
    '# TYPE orderflow_nats_consumed_total counter',
    'orderflow_nats_consumed_total{result="handled",subject="ns.orders.created"} 3',
    'orderflow_nats_consumed_total{result="failed",subject="ns.orders.created"} 1 1700000000000',
    'orderflow_lag_seconds_bucket{le="+Inf"} 2',
    'odd{v="a \\"b\\" \\\\ c\\nd"} NaN',
    'plain 4.5e1',
  ].join('\n');

  test('samples with labels (unescaped), +Inf, NaN, exponents; timestamps ignored', () => {
    const s = parsePrometheus(TEXT);
    expect(s).toHaveLength(5);
    expect(s[1]).toEqual({ name: 'orderflow_nats_consumed_total', labels: { result: 'failed', subject: 'ns.orders.created' }, value: 1 });
    expect(s[2]!.labels.le).toBe('+Inf');
    expect(s[3]!.labels.v).toBe('a "b" \\ c\nd');
    expect(s[3]!.value).toBeNaN();
    expect(s[4]).toEqual({ name: 'plain', labels: {}, value: 45 });
  });

  test('parseMetrics totals over label sets, filtered on the label text', () => {
    const m = parseMetrics(TEXT);
    expect(m.total('orderflow_nats_consumed_total')).toBe(4);
    expect(m.total('orderflow_nats_consumed_total', (l) => l.includes('result="handled"'))).toBe(3);
    expect(m.total('orderflow_nats_consumed')).toBe(0);
    expect(m.has('plain')).toBe(true);
    expect(m.has('orderflow_lag_seconds')).toBe(false);
  });
});
