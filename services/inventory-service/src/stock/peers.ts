import type { IncomingEvent } from '@orderflow/kit';

/**
 * Which events of a consumer batch (HandlerContext.peers) one handler may do the work of, so the
 * batch costs one statement per step instead of one per event. Pure: the repository does the I/O.
 *
 * The rule is that the outcome of every event must be what handling them one at a time, in order,
 * would give. Work done early for a later event is only equal when nothing in between touches
 * the same order; stock levels shared by several orders are kept current in memory instead.
 */

export type CreatedEvent = IncomingEvent<'orders.created', 'v1'>;

/** The events that end a hold (or, for a cancel before its order arrives, forbid one). */
const SETTLES: ReadonlySet<string> = new Set(['orders.confirmed', 'orders.cancelled', 'payments.failed']);

/**
 * Only the version the handlers are written for: the runtime validated each peer against its
 * version's schema, so the type and version are what vouch for its data.
 */
export function isCreated(e: IncomingEvent): e is CreatedEvent {
  return e.type === 'orders.created' && e.version === 'v1';
}

function isSettle(e: IncomingEvent): boolean {
  return SETTLES.has(e.type) && e.version === 'v1';
}

/** Reservation rows key on the uuid as Postgres returns it (lowercase). */
export function orderKey(e: IncomingEvent): string | undefined {
  const id = (e.data as { orderId?: unknown }).orderId;
  return typeof id === 'string' ? id.toLowerCase() : undefined;
}

export interface ClaimGroup {
  /** Later orders.created whose reservations can be claimed together with this one's. */
  others: CreatedEvent[];
  /** Later orders.created for an order of the group: each finds the row the group claims. */
  repeats: CreatedEvent[];
}

/**
 * The orders.created after `selfId` whose claim can be made now. One is left to its own handler
 * when another event in between names its order (a cancel in between must tombstone first, and
 * the created then finds the tombstone), or when `decided` says an earlier group took it.
 */
export function claimGroup(peers: readonly IncomingEvent[], selfId: string, decided: (eventId: string) => boolean): ClaimGroup {
  const group: ClaimGroup = { others: [], repeats: [] };
  const at = peers.findIndex((e) => e.id === selfId);
  if (at < 0) return group;
  const self = orderKey(peers[at]!);
  const claimed = new Set(self ? [self] : []);
  const touched = new Set<string>();
  for (const e of peers.slice(at + 1)) {
    const order = orderKey(e);
    if (!order) continue;
    if (!isCreated(e)) {
      touched.add(order);
      continue;
    }
    if (decided(e.id) || touched.has(order)) continue;
    if (claimed.has(order)) group.repeats.push(e);
    else {
      claimed.add(order);
      group.others.push(e);
    }
  }
  return group;
}

/** The orders the batch's settle events name: their reservation rows are locked together. */
export function settleOrders(peers: readonly IncomingEvent[]): string[] {
  return peers.filter(isSettle).flatMap((e) => orderKey(e) ?? []);
}
