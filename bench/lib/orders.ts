import { randomUUID } from 'node:crypto';
import { makeEvent, type Names, type OutgoingEvent } from '@orderflow/kit';

/** Products the bench seeds; enough of them that row locks on one product rarely queue. */
export const PRODUCTS = 200;
export const productId = (i: number): string => `bench-${i % PRODUCTS}`;

const ON_HAND = 10_000_000;

/** Stock for every bench product: far more than any run sells, so every order confirms. */
export function seedProducts(onHand = ON_HAND): string {
  return JSON.stringify(Array.from({ length: PRODUCTS }, (_, i) => ({ productId: productId(i), onHand, price: 10 + (i % 7) })));
}

/** What seedProducts() stocks, by product: the invariant checker's conservation baseline. */
export function initialStock(onHand = ON_HAND): Record<string, number> {
  return Object.fromEntries(Array.from({ length: PRODUCTS }, (_, i) => [productId(i), onHand]));
}

/** The POST /orders body the bench sends: two lines, like a small real order. */
export function orderBody(i: number): { customerId: string; items: Array<{ productId: string; quantity: number }> } {
  return {
    customerId: `cust-${i % 1000}`,
    items: [
      { productId: productId(i * 7), quantity: 1 },
      { productId: productId(i * 13 + 1), quantity: 2 },
    ],
  };
}

/** An orders.created event exactly as order-service would enqueue it for `orderBody(i)`. */
export function orderCreatedEvent(names: Names, i: number): OutgoingEvent {
  const b = orderBody(i);
  return makeEvent(names, 'orders.created', {
    version: 'v1',
    orderId: randomUUID(),
    customerId: b.customerId,
    currency: 'USD',
    items: b.items,
    correlationId: randomUUID(),
    occurredAt: new Date().toISOString(),
  });
}
