/**
 * orderflow_ready (the OrderflowServiceNotReady alert's input) says what GET /ready says, at
 * scrape time: the same checks, the shutdown flag included.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { opsApp } from '@orderflow/kit';
import { parseMetrics } from '@orderflow/kit/testing';

describe('orderflow_ready', () => {
  it('follows the readiness checks and shutdown', async () => {
    let db: true | string = true;
    let accepting = true;
    const registry = new Registry();
    const app = opsApp({
      registry,
      accepting: () => accepting,
      checks: [
        { name: 'nats', check: () => true },
        { name: 'database', check: () => db },
      ],
    });
    const ready = async () => parseMetrics(await (await app.request('/metrics')).text()).total('orderflow_ready');

    expect((await app.request('/ready')).status).toBe(200);
    expect(await ready()).toBe(1);

    db = 'connection refused';
    expect((await app.request('/ready')).status).toBe(503);
    expect(await ready()).toBe(0);

    db = true;
    expect(await ready()).toBe(1);
    accepting = false;
    expect(await ready()).toBe(0);
  });

  it('is registered once when a registry serves two ops apps', () => {
    const registry = new Registry();
    opsApp({ registry, accepting: () => true, checks: [] });
    expect(() => opsApp({ registry, accepting: () => true, checks: [] })).not.toThrow();
  });
});
