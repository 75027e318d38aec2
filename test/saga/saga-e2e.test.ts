import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';

describe('the saga end to end over HTTP', () => {
  const p = new Platform();
  beforeAll(async () => {
    await p.start();
  });
  afterAll(async () => {
    await p.stop();
  });

  const charges = async (orderId: string) =>
    ((await (await fetch(`${p.gateway.url}/charges?orderId=${orderId}`)).json()) as { charges: Array<{ status: string }> }).charges;

  test('happy path: confirmed, stock decremented, exactly one charge', async () => {
    await p.setStock('e2e-a', 10, 12.5);
    const { status, orderId } = await p.placeOrder('cust-1', [{ productId: 'e2e-a', quantity: 3 }]);
    expect(status).toBe(202);
    const final = await p.waitFinal([orderId!]);
    expect(final.get(orderId!)!.status).toBe('confirmed');
    // Order-service and payment both consume inventory.reserved: the payment may be recorded before
    // the reservation (transitions.ts allows it), and the late reservation then only sets the total.
    const order = await waitFor('the order total', async () => {
      const o = await p.order(orderId!);
      return o.total === 37.5 && o;
    });
    expect([
      ['pending', 'reserved', 'paid', 'confirmed'],
      ['pending', 'paid', 'confirmed'],
    ]).toContainEqual(order.history.map((h) => h.status));
    await waitFor('stock committed', async () => (await p.product('e2e-a')).onHand === 7);
    expect(await p.product('e2e-a')).toMatchObject({ onHand: 7, reserved: 0 });
    const c = await charges(orderId!);
    expect(c).toHaveLength(1);
    expect(c[0]!.status).toBe('captured');
    const pay = (await (await fetch(`${p.url('payment-service')}/payments/${orderId}`)).json()) as { status: string; amount: number };
    expect(pay).toMatchObject({ status: 'captured', amount: 37.5 });
  });

  test('out of stock: cancelled with reason, no charge, stock unchanged', async () => {
    await p.setStock('e2e-b', 2, 5);
    const { orderId } = await p.placeOrder('cust-2', [{ productId: 'e2e-b', quantity: 3 }]);
    const final = await p.waitFinal([orderId!]);
    expect(final.get(orderId!)).toEqual({ status: 'cancelled', reason: 'out_of_stock' });
    expect(await p.product('e2e-b')).toMatchObject({ onHand: 2, reserved: 0 });
    expect(await charges(orderId!)).toHaveLength(0);
  });

  test('payment declined: cancelled with reason, stock restored', async () => {
    // 300 × 50 = 15,000: over the sandbox's 10,000 decline limit.
    await p.setStock('e2e-c', 500, 50);
    const { orderId } = await p.placeOrder('cust-3', [{ productId: 'e2e-c', quantity: 300 }]);
    const final = await p.waitFinal([orderId!]);
    expect(final.get(orderId!)).toEqual({ status: 'cancelled', reason: 'payment_declined' });
    await waitFor('reservation released', async () => (await p.product('e2e-c')).reserved === 0);
    expect(await p.product('e2e-c')).toMatchObject({ onHand: 500, reserved: 0 });
    expect((await charges(orderId!)).filter((c) => c.status === 'captured')).toHaveLength(0);
  });

  test('200 orders racing for 50 units: exactly 50 sold, never negative, one capture per confirmed order', async () => {
    await p.setStock('e2e-hot', 50, 1);
    const capturesBefore = p.gateway.stats.captures;
    const placed = await Promise.all(
      Array.from({ length: 200 }, (_, i) => p.placeOrder(`racer-${i}`, [{ productId: 'e2e-hot', quantity: 1 }])),
    );
    expect(placed.every((r) => r.status === 202)).toBe(true);
    const final = await p.waitFinal(
      placed.map((r) => r.orderId!),
      90_000,
    );
    const statuses = [...final.values()];
    expect(statuses.filter((s) => s.status === 'confirmed')).toHaveLength(50);
    expect(statuses.filter((s) => s.status === 'cancelled' && s.reason === 'out_of_stock')).toHaveLength(150);
    await waitFor('stock settled', async () => (await p.product('e2e-hot')).reserved === 0);
    expect(await p.product('e2e-hot')).toMatchObject({ onHand: 0, reserved: 0 });
    // Exactly one capture for each confirmed order and none for the others: a double charge, or a
    // charge of an order that did not confirm, fails here.
    const byOrder = new Map<string, string[]>();
    for (const c of p.gateway.charges.values()) byOrder.set(c.orderId, [...(byOrder.get(c.orderId) ?? []), c.status]);
    for (const [orderId, s] of final)
      expect(byOrder.get(orderId) ?? [], `charges of ${s.status} order ${orderId}`).toEqual(s.status === 'confirmed' ? ['captured'] : []);
    expect(p.gateway.stats.captures - capturesBefore).toBe(50);
  });
});
