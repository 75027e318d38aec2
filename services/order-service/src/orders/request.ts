import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { Currency, OrderItem } from '@orderflow/kit';

/**
 * POST /orders body. Unknown fields are rejected (not stripped): a client sending a field we
 * ignore would believe it had an effect.
 */
export const CreateOrderRequest = v.strictObject({
  customerId: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(128)),
  items: v.pipe(
    v.array(OrderItem),
    v.minLength(1, 'an order needs at least 1 item'),
    v.maxLength(100, 'an order may have at most 100 items'),
  ),
  currency: v.optional(Currency, 'USD'),
});

export type CreateOrder = v.InferOutput<typeof CreateOrderRequest>;

/** Same logical body → same hash, whatever the key order or whitespace of the JSON. */
export function requestHash(body: CreateOrder): string {
  const canonical = JSON.stringify({
    customerId: body.customerId,
    currency: body.currency,
    items: body.items.map((i) => [i.productId, i.quantity]),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
