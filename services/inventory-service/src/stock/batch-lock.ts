import { txState, type TxSql } from '@orderflow/kit';
import { lockInOrder, type LockKind } from './lock-order.js';
import type { StockLevel } from './plan.js';
import type { ReservationView } from './types.js';

/**
 * The rows one transaction holds, as they stand in it.
 *
 * The kit runs the handlers of a consumer batch one after another in one transaction. The first
 * handler locks what the whole batch needs in one statement; the later ones find those rows here
 * instead of asking again. That is only right if every change the transaction makes to a held
 * row is written here too (the repository's adjust does so), since the database is not asked
 * again. A row looked for and not found is remembered as undefined: the rows are locked until
 * COMMIT, so only this transaction can change them, and the ones it creates it records here.
 */
export interface HeldRows {
  product: Map<string, StockLevel | undefined>;
  reservation: Map<string, ReservationView | undefined>;
  /** orders.created events whose reservation claim is made: true when the claim inserted the row. */
  claims: Map<string, boolean>;
  /** The reservations of the batch's settle events are locked (once per transaction). */
  settlesLocked: boolean;
}

/** The transaction's (by its TxSql), shared by all handlers of a batch. */
export const heldRows = txState<HeldRows>(() => ({ product: new Map(), reservation: new Map(), claims: new Map(), settlesLocked: false }));

/**
 * Locks, in the one lock order (lock-order.ts), the ids this transaction has not looked up yet,
 * and records what it found in `into`. `lock` is the SELECT ... FOR UPDATE for a sorted set of ids.
 */
export async function lockMissing<R, V>(
  sql: TxSql,
  kind: LockKind,
  into: Map<string, V | undefined>,
  ids: readonly string[],
  lock: (ids: string[], mode: 'wait' | 'nowait') => Promise<R[]>,
  idOf: (row: R) => string,
  value: (row: R) => V,
): Promise<void> {
  const missing = [...new Set(ids)].filter((id) => !into.has(id));
  if (missing.length === 0) return;
  const rows = await lockInOrder(sql, kind, missing, lock, idOf);
  for (const id of missing) into.set(id, undefined);
  for (const r of rows) into.set(idOf(r), value(r));
}
