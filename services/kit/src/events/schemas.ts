import * as v from 'valibot';

/**
 * Event contracts. Each (type, version) has one valibot schema; the JSON Schema files under
 * services/kit/schemas/ are generated from these (`npm run schemas`). Payloads are strict: an
 * unknown field in an event is a contract violation, caught at the consumer and dead-lettered.
 */

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const Uuid = v.pipe(v.string(), v.uuid());
const Timestamp = v.pipe(v.string(), v.isoTimestamp());
const Money = v.pipe(v.number(), v.minValue(0), v.finite());
export const Currency = v.picklist(['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD']);

const base = {
  orderId: Uuid,
  correlationId: Id,
  occurredAt: Timestamp,
};

export const OrderItem = v.strictObject({
  productId: Id,
  quantity: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000)),
});

export const OrdersCreatedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  customerId: Id,
  currency: Currency,
  items: v.pipe(v.array(OrderItem), v.minLength(1), v.maxLength(100)),
});

/**
 * v2 of orders.created renames the flat `customerId` into a nested reference `customer: { id }`.
 * A renamed required field is the classic change that cannot be made inside a version: v1 readers
 * require `customerId` and, payloads being strict, reject `customer`. It is lossless, so the
 * upcaster (events/upcast.ts) turns v1 history into exactly what a v2 producer would have sent.
 * The nested object is where customer attributes (segment, locale…) go in later versions.
 */
export const OrdersCreatedV2 = v.strictObject({
  version: v.literal('v2'),
  ...base,
  customer: v.strictObject({ id: Id }),
  currency: Currency,
  items: v.pipe(v.array(OrderItem), v.minLength(1), v.maxLength(100)),
});

export const InventoryReservedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  currency: Currency,
  items: v.array(v.strictObject({ productId: Id, quantity: v.pipe(v.number(), v.integer(), v.minValue(1)), unitPrice: Money })),
  amount: Money,
});

export const InventoryRejectedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  reason: v.picklist(['out_of_stock', 'unknown_product']),
  shortages: v.array(v.strictObject({ productId: Id, requested: v.number(), available: v.number() })),
});

export const InventoryReleasedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  reason: v.string(),
});

export const PaymentsCompletedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  paymentId: Id,
  amount: Money,
  currency: Currency,
});

export const PaymentsFailedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  reason: v.picklist(['payment_declined', 'gateway_unavailable', 'order_cancelled']),
  detail: v.optional(v.pipe(v.string(), v.maxLength(1024))),
  amount: Money,
});

export const OrdersConfirmedV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
});

export const OrdersCancelledV1 = v.strictObject({
  version: v.literal('v1'),
  ...base,
  reason: v.string(),
});

export const EVENT_SCHEMAS = {
  'orders.created': { v1: OrdersCreatedV1, v2: OrdersCreatedV2 },
  'inventory.reserved': { v1: InventoryReservedV1 },
  'inventory.rejected': { v1: InventoryRejectedV1 },
  'inventory.released': { v1: InventoryReleasedV1 },
  'payments.completed': { v1: PaymentsCompletedV1 },
  'payments.failed': { v1: PaymentsFailedV1 },
  'orders.confirmed': { v1: OrdersConfirmedV1 },
  'orders.cancelled': { v1: OrdersCancelledV1 },
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export type EventVersion<T extends EventType> = keyof (typeof EVENT_SCHEMAS)[T] & string;
export type EventData<T extends EventType, V extends EventVersion<T> = EventVersion<T>> = v.InferOutput<
  (typeof EVENT_SCHEMAS)[T][V] extends v.GenericSchema ? (typeof EVENT_SCHEMAS)[T][V] : never
>;

/**
 * The version a handler sees when it does not declare one: v1, the version every handler was
 * written against before versions existed (see consumer/contract.ts `VersionedHandler`).
 */
export type DefaultVersion<T extends EventType> = 'v1' & EventVersion<T>;

export function isEventType(t: string): t is EventType {
  return Object.hasOwn(EVENT_SCHEMAS, t);
}
