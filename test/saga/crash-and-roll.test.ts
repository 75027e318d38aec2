import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { waitFor } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';

/** Places `n` orders at a steady pace; resolves with the accepted order ids. */
async function burst(
  p: Platform,
  n: number,
  productIds: string[],
  perTick = 25,
  tickMs = 20,
  onTick?: (sent: number) => Promise<void> | void,
): Promise<string[]> {
  const ids: string[] = [];
  for (let sent = 0; sent < n; sent += perTick) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(perTick, n - sent) }, (_, i) =>
        p.placeOrder(`load-${sent + i}`, [{ productId: productIds[(sent + i) % productIds.length]!, quantity: 1 }]),
      ),
    );
    for (const r of batch) {
      expect(r.status).toBe(202);
      ids.push(r.orderId!);
    }
    await onTick?.(sent + batch.length);
    await new Promise((r) => setTimeout(r, tickMs));
  }
  return ids;
}

/** Stock conservation: for every product, onHand + sold = initial, nothing left reserved. */
async function assertStockConserved(p: Platform, initial: Record<string, number>, confirmedByProduct: Record<string, number>) {
  for (const [productId, start] of Object.entries(initial)) {
    const [row] = await p.query<{ on_hand: number; reserved: number; sold: number }>(
      'inventory-service',
      `SELECT on_hand, reserved, sold FROM products WHERE product_id = $1`,
      [productId],
    );
    expect(row, productId).toBeDefined();
    expect(row!.reserved, `${productId} reserved`).toBe(0);
    expect(row!.on_hand + row!.sold, `${productId} on_hand + sold`).toBe(start);
    expect(row!.sold, `${productId} sold = confirmed quantity`).toBe(confirmedByProduct[productId] ?? 0);
  }
}

async function assertOneChargePerConfirmed(p: Platform, final: Map<string, { status: string }>) {
  const r = (await (await fetch(`${p.gateway.url}/charges`)).json()) as { charges: Array<{ orderId: string; status: string }> };
  const captured = new Map<string, number>();
  for (const c of r.charges) if (c.status === 'captured') captured.set(c.orderId, (captured.get(c.orderId) ?? 0) + 1);
  for (const [id, s] of final) {
    if (s.status === 'confirmed') expect(captured.get(id), `charges for confirmed ${id}`).toBe(1);
    else expect(captured.get(id) ?? 0, `charges for cancelled ${id}`).toBe(0);
  }
}

describe('crash: kill -9 inventory-service mid-burst', () => {
  const p = new Platform({ childProcesses: ['inventory-service'], env: { SAGA_TIMEOUT_MS: '120000' } });
  const products = ['crash-1', 'crash-2', 'crash-3', 'crash-4'];
  const initial: Record<string, number> = { 'crash-1': 100, 'crash-2': 100, 'crash-3': 100, 'crash-4': 150 };
  beforeAll(async () => {
    await p.start();
    for (const id of products) await p.setStock(id, initial[id]!, 2);
  }, 90_000);
  afterAll(async () => {
    await p.stop();
  });

  test('500 orders, inventory killed and restarted: every order final, stock conserved, no double charge', async () => {
    let killed = false;
    const ids = await burst(p, 500, products, 25, 20, async (sent) => {
      if (!killed && sent >= 150) {
        killed = true;
        await p.kill('inventory-service');
        // Keep the load going for a while with inventory down, then bring it back.
        setTimeout(() => void p.startInstance('inventory-service'), 1500);
      }
    });
    expect(killed).toBe(true);
    await waitFor('inventory back', async () => p.instances.has('inventory-service'), 30_000);
    const final = await p.waitFinal(ids, 120_000);
    expect(final.size).toBe(500);
    const confirmed = [...final.entries()].filter(([, s]) => s.status === 'confirmed');
    // 125 one-unit orders per product against 100/100/100/150 units: 300 + 125 can confirm.
    expect(confirmed).toHaveLength(425);
    expect(
      [...final.values()].filter((s) => s.status === 'cancelled').every((s) => (s as { reason?: string }).reason === 'out_of_stock'),
    ).toBe(true);
    await waitFor('inventory settled', async () => {
      const rows = await p.query<{ n: number }>('inventory-service', `SELECT count(*)::int AS n FROM reservations WHERE status = 'held'`);
      return rows[0]!.n === 0;
    });
    const byProduct: Record<string, number> = {};
    ids.forEach((id, i) => {
      if (final.get(id)!.status === 'confirmed')
        byProduct[products[i % products.length]!] = (byProduct[products[i % products.length]!] ?? 0) + 1;
    });
    await assertStockConserved(p, initial, byProduct);
    await assertOneChargePerConfirmed(p, final);
  });
});

describe('rolling deploy: two inventory instances on one durable, one gets SIGTERM mid-load', () => {
  // A drain delay as Kubernetes deployments set it: readiness goes 503 first, the listener stays
  // open that long (endpoints are removed while requests still find a server), then it closes.
  const p = new Platform({ childProcesses: ['inventory-service', 'order-service'], env: { SHUTDOWN_DRAIN_DELAY_MS: '2000' } });
  const initial: Record<string, number> = { 'roll-1': 1000, 'roll-2': 1000 };
  beforeAll(async () => {
    await p.start();
    await p.startInstance('inventory-service', 'inventory-2', true);
    for (const [id, n] of Object.entries(initial)) await p.setStock(id, n, 1);
  }, 90_000);
  afterAll(async () => {
    await p.stop();
  });

  test('every order final, exit 0 within the timeout, no lost or doubled effect', async () => {
    let shutdown: Promise<{ code: number | null; ms: number }> | undefined;
    const ids = await burst(p, 400, ['roll-1', 'roll-2'], 20, 20, async (sent) => {
      if (!shutdown && sent >= 120) {
        shutdown = p.terminate('inventory-service');
        // The replacement comes up while the old one drains.
        void p.startInstance('inventory-service', 'inventory-3', true);
      }
    });
    const { code, ms } = await shutdown!;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(20_000);
    const final = await p.waitFinal(ids, 120_000);
    expect([...final.values()].every((s) => s.status === 'confirmed')).toBe(true);
    await waitFor(
      'stock settled',
      async () =>
        (await p.query<{ n: number }>('inventory-service', `SELECT count(*)::int AS n FROM reservations WHERE status = 'held'`))[0]!.n ===
        0,
    );
    const byProduct: Record<string, number> = {};
    ids.forEach((_, i) => {
      const pid = i % 2 === 0 ? 'roll-1' : 'roll-2';
      byProduct[pid] = (byProduct[pid] ?? 0) + 1;
    });
    await assertStockConserved(p, initial, byProduct);
    await assertOneChargePerConfirmed(p, final);
  });

  test(
    "order-service's HTTP side: SIGTERM with requests in flight → readiness off first, requests still served, " + 'accepted ones complete',
    async () => {
      const id = p.anyInstance('order-service');
      const url = p.url('order-service', id);
      const post = (customerId: string) =>
        fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ customerId, items: [{ productId: 'roll-1', quantity: 1 }] }),
        }).then(
          async (r) => ({ status: r.status, orderId: ((await r.json()) as { orderId?: string }).orderId }),
          () => ({ status: 0, orderId: undefined }),
        );
      const inflight = Array.from({ length: 40 }, (_, i) => post(`inflight-${i}`));
      const stopping = p.terminate(id);
      // The first /ready answer after SIGTERM that is not 200 must be a 503 from a listener that is
      // still open — not a refused connection (readiness and listener going at once).
      let firstNotReady: number | 'refused' | undefined;
      await waitFor(
        'readiness off after SIGTERM',
        async () => {
          const status = await fetch(`${url}/ready`).then(
            (r) => r.status,
            () => 'refused' as const,
          );
          if (status !== 200) firstNotReady = status;
          return status !== 200;
        },
        10_000,
        10,
      );
      expect(firstNotReady).toBe(503);
      // While not ready it still takes orders: a request routed to it before its endpoint was removed.
      const duringDrain = await Promise.all(Array.from({ length: 10 }, (_, i) => post(`draining-${i}`)));
      const results = [...(await Promise.all(inflight)), ...duringDrain];
      const { code } = await stopping;
      expect(code).toBe(0);
      // Every request sent before the listener closed was served: 202, never a 5xx, never refused.
      expect(results.map((r) => r.status)).toEqual(results.map(() => 202));
      const accepted = results.map((r) => r.orderId!);
      await p.startInstance('order-service', 'order-2', true);
      const final = await p.waitFinal(accepted, 60_000);
      expect(final.size).toBe(50);
    },
  );
});
