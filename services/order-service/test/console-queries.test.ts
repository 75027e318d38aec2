import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningService } from '@orderflow/kit';
import { startTestService, testNamespace, type Backend, type TestService } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// The read-only endpoints the ops console uses: lookup by correlation id and aggregate stats.
describe.each<Backend>(['postgres', 'pglite'])('order-service console queries on %s', (backend) => {
  const ns = testNamespace();
  let svc: RunningService;
  let t: TestService;

  const post = async (correlationId: string) => {
    const r = await fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Correlation-ID': correlationId },
      body: JSON.stringify({ customerId: 'c-1', items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    return ((await r.json()) as { orderId: string }).orderId;
  };

  beforeAll(async () => {
    t = await startTestService(orderService(), { label: 'orders_console', backend: backend, env: { ORDERFLOW_NAMESPACE: ns } });
    svc = t.svc;
  });
  afterAll(async () => {
    await t?.stop();
  });

  test('GET /orders?correlationId= lists the orders with that id; without it 400 problem', async () => {
    const a = await post('corr-shared');
    const b = await post('corr-shared');
    await post('corr-other');
    const r = await fetch(`${svc.url}/orders?correlationId=corr-shared`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { orders: Array<{ orderId: string; correlationId: string; history: unknown[] }> };
    expect(body.orders.map((o) => o.orderId).sort()).toEqual([a, b].sort());
    expect(body.orders.every((o) => o.correlationId === 'corr-shared' && o.history.length === 1)).toBe(true);
    expect(((await (await fetch(`${svc.url}/orders?correlationId=nobody`)).json()) as { orders: unknown[] }).orders).toEqual([]);
    const bad = await fetch(`${svc.url}/orders`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
  });

  test('GET /orders/stats counts by status, cancel reasons and a per-minute series', async () => {
    const confirmed = await post('s-1');
    const cancelled = await post('s-2');
    await post('s-3');
    // Final states normally come from the saga; set them directly (this test has no saga running).
    await svc.ctx.db.query(`UPDATE orders SET status = 'confirmed', updated_at = now() WHERE id = $1`, [confirmed]);
    await svc.ctx.db.query(`UPDATE orders SET status = 'cancelled', reason = 'out_of_stock', updated_at = now() WHERE id = $1`, [
      cancelled,
    ]);
    const r = await fetch(`${svc.url}/orders/stats?minutes=5`);
    expect(r.status).toBe(200);
    const s = (await r.json()) as {
      windowMinutes: number;
      byStatus: Record<string, number>;
      windowByStatus: Record<string, number>;
      cancelReasons: Record<string, number>;
      series: Array<{ at: string; created: number; confirmed: number; cancelled: number }>;
    };
    expect(s.windowMinutes).toBe(5);
    expect(s.byStatus).toMatchObject({ confirmed: 1, cancelled: 1 });
    expect(s.byStatus.pending).toBeGreaterThanOrEqual(1);
    expect(s.windowByStatus.confirmed).toBe(1);
    expect(s.cancelReasons).toEqual({ out_of_stock: 1 });
    expect(s.series).toHaveLength(5);
    const sum = (k: 'created' | 'confirmed' | 'cancelled') => s.series.reduce((n, p) => n + p[k], 0);
    const total = Object.values(s.byStatus).reduce((n, v) => n + v, 0);
    expect(sum('created')).toBe(total);
    expect(sum('confirmed')).toBe(1);
    expect(sum('cancelled')).toBe(1);
    expect(Date.parse(s.series[4]!.at)).toBeGreaterThan(Date.parse(s.series[0]!.at));
    expect((await fetch(`${svc.url}/orders/stats?minutes=0`)).status).toBe(400);
  });

  test('an order id still resolves (stats is not taken for an id)', async () => {
    const id = await post('s-4');
    expect((await fetch(`${svc.url}/orders/${id}`)).status).toBe(200);
  });
});
