import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Names } from '@orderflow/kit';
import { readStream, testNats, waitFor } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';
import type { ServiceName } from '../support/topology.js';
import { publish } from '../../services/inventory-service/test/helpers.js';

/**
 * Compensation does not depend on one message surviving. The whole platform runs; a service is
 * stopped so that the saga's outcome message waits in its stream for it, the test deletes that
 * message (what a dead-lettered or otherwise lost message amounts to), and the service comes
 * back. Only its sweeper, asking order-service what became of the order, can then settle the
 * stock or the money. Two replicas of the swept service run at once, so each settlement must
 * also happen exactly once.
 */

type SweptEnv = Record<string, string>;

/** Restarts inventory and payment (as `replicas` instances each) knowing where order-service is. */
async function pointAtOrderService(p: Platform, env: Partial<Record<ServiceName, SweptEnv>>): Promise<void> {
  for (const name of ['inventory-service', 'payment-service'] as const) {
    p.opts.serviceEnv![name] = { ...env[name], ORDER_SERVICE_URL: p.url('order-service') };
    await p.terminate(name);
    await p.startInstance(name);
  }
}

async function reservation(p: Platform, orderId: string): Promise<string | undefined> {
  const [r] = await p.query<{ status: string }>('inventory-service', `SELECT status FROM reservations WHERE order_id = $1`, [orderId]);
  return r?.status;
}

async function payment(p: Platform, orderId: string): Promise<{ status: string; order_status: string | null } | undefined> {
  const [r] = await p.query<{ status: string; order_status: string | null }>(
    'payment-service',
    `SELECT status, order_status FROM payments WHERE order_id = $1`,
    [orderId],
  );
  return r;
}

/** Deletes the saga message of `type` for an order from its stream once it is there: it is lost. */
async function lose(nc: NatsConnection, p: Platform, stream: 'ORDERS' | 'PAYMENTS', type: string, orderId: string): Promise<void> {
  const names = new Names(p.ns);
  const seq = await waitFor(`${type} for ${orderId} in ${stream}`, async () => {
    const msgs = await readStream(nc, names.stream(stream));
    return msgs.find((m) => m.subject === names.subject(type) && (m.json as { orderId?: string }).orderId === orderId)?.seq;
  });
  const jsm = await jetstreamManager(nc);
  expect(await jsm.streams.deleteMessage(names.stream(stream), seq)).toBe(true);
}

async function eventsFor(nc: NatsConnection, p: Platform, stream: 'INVENTORY' | 'PAYMENTS', orderId: string): Promise<string[]> {
  const names = new Names(p.ns);
  const msgs = await readStream(nc, names.stream(stream));
  return msgs.filter((m) => (m.json as { orderId?: string }).orderId === orderId).map((m) => names.eventType(m.subject));
}

async function metricSum(p: Platform, ids: string[], name: string, labels: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const id of ids) {
    const m = await p.instances.get(id)?.inProcess?.ctx.metrics.registry.getSingleMetric(name)?.get();
    for (const v of m?.values ?? []) if (Object.entries(labels).every(([k, x]) => v.labels[k] === x)) sum += v.value;
  }
  return sum;
}

describe('inventory sweeper: a hold whose outcome message was lost', () => {
  const sweep = { SAGA_TIMEOUT_MS: '300', RESERVATION_SWEEP_MARGIN_MS: '0', RESERVATION_SWEEP_INTERVAL_MS: '200' };
  const refunds = { SAGA_TIMEOUT_MS: '300', REFUND_SWEEP_MARGIN_MS: '0', REFUND_SWEEP_INTERVAL_MS: '200' };
  const p = new Platform({ serviceEnv: {} });
  let nc: NatsConnection;
  beforeAll(async () => {
    await p.start();
    await pointAtOrderService(p, { 'inventory-service': sweep, 'payment-service': refunds });
    nc = await testNats();
  });
  afterAll(async () => {
    await nc?.close();
    await p.stop();
  });

  /** Places an order while payment is down, and stops inventory once the stock is held. */
  async function holdThenStopInventory(productId: string, quantity: number): Promise<string> {
    await p.terminate('payment-service');
    const { orderId } = await p.placeOrder('sweep', [{ productId, quantity }]);
    await waitFor('stock held', async () => (await reservation(p, orderId!)) === 'held');
    await p.terminate('inventory-service');
    await p.startInstance('payment-service');
    return orderId!;
  }

  async function twoInventoryReplicas(): Promise<string[]> {
    await p.startInstance('inventory-service', 'inventory-a');
    await p.startInstance('inventory-service', 'inventory-b');
    return ['inventory-a', 'inventory-b'];
  }

  async function stopReplicas(ids: string[]): Promise<void> {
    for (const id of ids) await p.terminate(id);
    await p.startInstance('inventory-service');
  }

  test('orders.cancelled and payments.failed never arrive: the sweeper releases the hold, once', async () => {
    // 300 × 50 = 15,000: over the sandbox's decline limit, so the order is cancelled.
    await p.setStock('sweep-cancel', 500, 50);
    const orderId = await holdThenStopInventory('sweep-cancel', 300);
    expect((await p.waitFinal([orderId])).get(orderId)).toEqual({ status: 'cancelled', reason: 'payment_declined' });
    await lose(nc, p, 'ORDERS', 'orders.cancelled', orderId);
    await lose(nc, p, 'PAYMENTS', 'payments.failed', orderId);

    const replicas = await twoInventoryReplicas();
    await waitFor('released by the sweeper', async () => (await reservation(p, orderId)) === 'released');
    expect(await p.product('sweep-cancel')).toMatchObject({ onHand: 500, reserved: 0 });
    const [r] = await p.query<{ reason: string }>('inventory-service', `SELECT reason FROM reservations WHERE order_id = $1`, [orderId]);
    expect(r?.reason).toBe('payment_declined');
    await waitFor('inventory.released published', async () =>
      (await eventsFor(nc, p, 'INVENTORY', orderId)).includes('inventory.released'),
    );
    expect(await eventsFor(nc, p, 'INVENTORY', orderId)).toEqual(['inventory.reserved', 'inventory.released']);
    expect(await metricSum(p, replicas, 'orderflow_inventory_sweeper_total', { action: 'released' })).toBe(1);
    await stopReplicas(replicas);
  });

  test('orders.confirmed never arrives: the sweeper commits the held units, once; payment notes the order confirmed', async () => {
    await p.setStock('sweep-confirm', 20, 5);
    const orderId = await holdThenStopInventory('sweep-confirm', 3);
    expect((await p.waitFinal([orderId])).get(orderId)).toEqual({ status: 'confirmed' });
    await lose(nc, p, 'ORDERS', 'orders.confirmed', orderId);

    const replicas = await twoInventoryReplicas();
    await waitFor('committed by the sweeper', async () => (await reservation(p, orderId)) === 'committed');
    expect(await p.product('sweep-confirm')).toMatchObject({ onHand: 17, reserved: 0, sold: 3 });
    expect(await metricSum(p, replicas, 'orderflow_inventory_sweeper_total', { action: 'committed' })).toBe(1);
    await stopReplicas(replicas);
    // payment's refund sweeper asked about the capture too: confirmed, so it is left alone for good.
    await waitFor('payment saw the order confirmed', async () => (await payment(p, orderId))?.order_status === 'confirmed');
    expect((await payment(p, orderId))?.status).toBe('captured');
  });

  test('an order order-service does not know: nothing is guessed, the hold stays and is asked about again later', async () => {
    await p.setStock('sweep-unknown', 5, 1);
    const orderId = randomUUID();
    const data = {
      version: 'v1' as const,
      orderId,
      correlationId: `corr-${orderId}`,
      occurredAt: new Date().toISOString(),
      customerId: 'nobody',
      currency: 'USD' as const,
    };
    await publish(nc, new Names(p.ns), 'orders.created', { ...data, items: [{ productId: 'sweep-unknown', quantity: 2 }] });
    await waitFor('stock held', async () => (await reservation(p, orderId)) === 'held');
    // Asked about again later: a second lookup happens (a fact), and the hold is still there after it.
    // (Comparing sweep_next_at with now() raced the short test interval.)
    await waitFor(
      'looked up twice, unknown both times',
      async () => (await metricSum(p, ['inventory-service'], 'orderflow_inventory_sweeper_total', { action: 'unknown_order' })) >= 2,
    );
    const [r] = await p.query<{ status: string; sweep_checks: number }>(
      'inventory-service',
      `SELECT status, sweep_checks FROM reservations WHERE order_id = $1`,
      [orderId],
    );
    expect(r).toMatchObject({ status: 'held' });
    expect(r!.sweep_checks).toBeGreaterThanOrEqual(2);
    expect(await p.product('sweep-unknown')).toMatchObject({ onHand: 5, reserved: 2 });
  });
});

describe('payment refund sweeper: a capture whose orders.cancelled was lost', () => {
  const sweep = { SAGA_TIMEOUT_MS: '300', REFUND_SWEEP_MARGIN_MS: '0', REFUND_SWEEP_INTERVAL_MS: '200' };
  // Orders time out fast here: the way an order ends up cancelled while its charge is still to come.
  const p = new Platform({ serviceEnv: { 'order-service': { SAGA_TIMEOUT_MS: '1500' } } });
  let nc: NatsConnection;
  beforeAll(async () => {
    await p.start();
    await pointAtOrderService(p, { 'payment-service': sweep });
    nc = await testNats();
  });
  afterAll(async () => {
    await nc?.close();
    await p.stop();
  });

  test('the order timed out while payment was down, the cancel is lost, the late capture is refunded by state, once', async () => {
    await p.setStock('sweep-refund', 10, 7);
    await p.terminate('payment-service');
    const { orderId } = await p.placeOrder('sweep', [{ productId: 'sweep-refund', quantity: 2 }]);
    expect((await p.waitFinal([orderId!])).get(orderId!)).toEqual({ status: 'cancelled', reason: 'timeout' });
    // Inventory got orders.cancelled; payment never will.
    await waitFor('stock released', async () => (await reservation(p, orderId!)) === 'released');
    await lose(nc, p, 'ORDERS', 'orders.cancelled', orderId!);
    const before = { ...p.gateway.stats };

    await p.startInstance('payment-service', 'payment-a');
    await p.startInstance('payment-service', 'payment-b');
    // inventory.reserved is still waiting for payment: it charges, and nothing tells it the order is gone.
    await waitFor(
      'charge refunded at the gateway',
      async () => [...p.gateway.charges.values()].find((c) => c.orderId === orderId)?.status === 'refunded',
    );
    await waitFor('payment refunded', async () => (await payment(p, orderId!))?.status === 'refunded');
    expect(await payment(p, orderId!)).toMatchObject({ status: 'refunded', order_status: 'cancelled' });
    expect([...p.gateway.charges.values()].filter((c) => c.orderId === orderId)).toHaveLength(1);
    expect(p.gateway.stats.captures - before.captures).toBe(1);
    expect(p.gateway.stats.refunds - before.refunds).toBe(1);
    expect(p.gateway.stats.refundRequests - before.refundRequests).toBe(1);
    expect(await metricSum(p, ['payment-a', 'payment-b'], 'orderflow_payment_refund_sweeper_total', { action: 'refund_owed' })).toBe(1);
    expect((await p.order(orderId!)).status).toBe('cancelled');
  });
});
