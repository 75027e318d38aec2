import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import type { RunningService } from '@orderflow/kit';
import { readStream, startTestService, testNamespace, waitFor, type TestService } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// No inventory or payment service runs here: nothing answers orders.created, so the saga
// timeout is the only way the order can end.
const ns = testNamespace();
let svc: RunningService;
let nc: NatsConnection;
let t: TestService;

beforeAll(async () => {
  t = await startTestService(orderService(), {
    label: 'timeout',
    backend: 'postgres',
    env: { ORDERFLOW_NAMESPACE: ns, SAGA_TIMEOUT_MS: '1000' },
  });
  svc = t.svc;
  nc = t.nc;
});
afterAll(async () => {
  await t?.stop();
});

test('an order nobody answers is cancelled with reason timeout and orders.cancelled is published once', async () => {
  const r = await fetch(`${svc.url}/orders`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ customerId: 'slow', items: [{ productId: 'sku-1', quantity: 1 }] }),
  });
  const { orderId } = (await r.json()) as { orderId: string };
  const order = await waitFor(
    'cancelled by timeout',
    async () => {
      const o = (await (await fetch(`${svc.url}/orders/${orderId}`)).json()) as {
        status: string;
        reason?: string;
        history: Array<{ status: string; reason?: string }>;
      };
      return o.status === 'cancelled' ? o : undefined;
    },
    15_000,
  );
  expect(order.reason).toBe('timeout');
  expect(order.history.map((h) => h.status)).toEqual(['pending', 'cancelled']);
  await waitFor('orders.cancelled published', async () =>
    (await readStream(nc, `${ns.toUpperCase()}_ORDERS`)).some((m) => m.subject.endsWith('orders.cancelled')),
  );
  // Later sweeps leave a final order alone: still one cancellation event.
  await new Promise((res) => setTimeout(res, 1500));
  const cancelled = (await readStream(nc, `${ns.toUpperCase()}_ORDERS`)).filter((m) => m.subject.endsWith('orders.cancelled'));
  expect(cancelled).toHaveLength(1);
  expect(cancelled[0]!.json).toMatchObject({ orderId, reason: 'timeout' });
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  expect(metrics).toMatch(/orderflow_saga_outcomes_total\{[^}]*outcome="cancelled"[^}]*reason="timeout"[^}]*\} 1/);
});
