import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@orderflow/kit';
import { gatewayPolicy } from '../src/gateway/resilience.js';

const cfg = {
  timeoutMs: 5_000,
  maxRetries: 2,
  retryInitialDelayMs: 10,
  retryMaxDelayMs: 50,
  breakerThreshold: 5,
  breakerHalfOpenAfterMs: 1_000,
  maxConcurrent: 16,
};

describe('gateway policy', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  afterEach(() => {
    process.off('warning', onWarning);
    warnings.length = 0;
  });

  it('a burst of calls past the bulkhead settles every call and warns of no listener leak', async () => {
    process.on('warning', onWarning);
    const policy = gatewayPolicy(cfg, new Registry(), createLogger('test', 'silent'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Every call is in flight or queued at once, as a consumer batch of charges is.
    const calls = Array.from({ length: 64 }, (_, i) =>
      policy.execute(async (signal) => {
        await gate;
        return { i, aborted: signal.aborted };
      }),
    );
    await new Promise((r) => setImmediate(r));
    release();
    const out = await Promise.all(calls);
    expect(out.map((o) => o.i)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(out.every((o) => !o.aborted)).toBe(true);
    // Warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
  });
});
