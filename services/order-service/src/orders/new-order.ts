import { randomUUID } from 'node:crypto';
import { makeEventVersions, outboxParams, type EventData, type EventVersion, type Names, type OutgoingEvent } from '@orderflow/kit';
import type { CreateOrder } from './request.js';

export type OrdersCreatedVersion = EventVersion<'orders.created'>;

/**
 * An order as it will be inserted, with its orders.created events already in outbox form. Built
 * in the request's own async context: the events carry that request's trace context even when
 * the order is written later, in a group with others (group-commit.ts).
 */
export interface NewOrder {
  orderId: string;
  customerId: string;
  currency: string;
  /** JSON text of the items and of the first history entry (jsonb parameters). */
  items: string;
  history: string;
  correlationId: string;
  idem?: { key: string; hash: string };
  /** Its events, published by the relay once the order is committed (as created, not replayed). */
  events: OutgoingEvent[];
  /** outboxParams() of its events: event ids, subjects, headers, payloads. */
  outbox: [string[], string[], string[], string[]];
}

/**
 * `versions` (ORDERS_CREATED_VERSIONS, default v1) are the versions of orders.created to publish:
 * during a migration both, each its own message, enqueued together (docs/contracts.md).
 */
export function newOrder(
  names: Names,
  body: CreateOrder,
  correlationId: string,
  idem?: { key: string; hash: string },
  versions: readonly OrdersCreatedVersion[] = ['v1'],
): NewOrder {
  const orderId = randomUUID();
  const now = new Date().toISOString();
  const created: { [V in OrdersCreatedVersion]: () => EventData<'orders.created', V> } = {
    v1: () => ({
      version: 'v1',
      orderId,
      customerId: body.customerId,
      currency: body.currency,
      items: body.items,
      correlationId,
      occurredAt: now,
    }),
    v2: () => ({
      version: 'v2',
      orderId,
      customer: { id: body.customerId },
      currency: body.currency,
      items: body.items,
      correlationId,
      occurredAt: now,
    }),
  };
  const events = makeEventVersions(
    names,
    'orders.created',
    versions.map((v) => created[v]()),
  );
  return {
    orderId,
    customerId: body.customerId,
    currency: body.currency,
    items: JSON.stringify(body.items),
    history: JSON.stringify([{ status: 'pending', at: now }]),
    correlationId,
    ...(idem ? { idem } : {}),
    events,
    outbox: outboxParams(events),
  };
}
