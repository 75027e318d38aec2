/**
 * Pure decisions of the inventory side of the saga; the repository does the locking and I/O.
 */

export interface LineItem {
  productId: string;
  quantity: number;
}

export interface PricedItem extends LineItem {
  unitPrice: number;
}

/** A product row as locked for a reservation. */
export interface StockLevel {
  productId: string;
  onHand: number;
  reserved: number;
  price: number | null;
}

export interface Shortage {
  productId: string;
  requested: number;
  available: number;
}

export type ReservePlan =
  | { kind: 'reserve'; items: PricedItem[]; amount: number }
  | { kind: 'reject'; reason: 'out_of_stock' | 'unknown_product'; shortages: Shortage[] };

/**
 * One line per product, quantities summed, in first-seen order: an order listing a product twice
 * must be checked against its total, not line by line.
 */
export function mergeItems(items: readonly LineItem[]): LineItem[] {
  const byId = new Map<string, LineItem>();
  for (const i of items) {
    const prior = byId.get(i.productId);
    if (prior) prior.quantity += i.quantity;
    else byId.set(i.productId, { productId: i.productId, quantity: i.quantity });
  }
  return [...byId.values()];
}

/** Half-up to cents; toFixed first drops binary noise such as 31.299999999999997. */
export function roundCents(x: number): number {
  return Math.round(Number((x * 100).toFixed(6))) / 100;
}

/**
 * All or nothing: every line must be covered by available stock (on hand − reserved), else the
 * order is rejected naming every short product. An unknown product wins over plain shortage,
 * since restocking would not help it.
 */
export function planReservation(items: readonly LineItem[], stock: ReadonlyMap<string, StockLevel>): ReservePlan {
  const unknown: Shortage[] = [];
  const short: Shortage[] = [];
  for (const i of items) {
    const s = stock.get(i.productId);
    if (!s) unknown.push({ productId: i.productId, requested: i.quantity, available: 0 });
    else if (s.onHand - s.reserved < i.quantity)
      short.push({ productId: i.productId, requested: i.quantity, available: Math.max(0, s.onHand - s.reserved) });
  }
  if (unknown.length) return { kind: 'reject', reason: 'unknown_product', shortages: [...unknown, ...short] };
  if (short.length) return { kind: 'reject', reason: 'out_of_stock', shortages: short };
  const priced = items.map((i) => ({ ...i, unitPrice: stock.get(i.productId)!.price ?? 0 }));
  return { kind: 'reserve', items: priced, amount: roundCents(priced.reduce((sum, i) => sum + i.quantity * i.unitPrice, 0)) };
}

/** Per unit of an order line: how a step of the saga moves a product's counters. */
export interface StockDelta {
  onHand: number;
  reserved: number;
  sold: number;
}

/**
 * A product's level after `quantity` units moved by `delta`: what the repository's UPDATE makes of
 * the row, so that the next order of a batch is planned against what the earlier ones took.
 */
export function shifted(level: StockLevel, quantity: number, delta: StockDelta): StockLevel {
  return { ...level, onHand: level.onHand + delta.onHand * quantity, reserved: level.reserved + delta.reserved * quantity };
}
