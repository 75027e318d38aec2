import { txState, type TxSql } from '@orderflow/kit';

/**
 * One lock order for a whole transaction, however many orders it covers.
 *
 * The kit's batched consumer runs the handlers of many messages one after another in one
 * transaction, and each handler sees only its own message, so a batch cannot take all its locks
 * up front in one sorted pass. Sorting per order is not enough: a batch holding product B (first
 * order) that then waits for product A (second order) deadlocks with a batch that holds A and
 * waits for B. So every row lock inventory takes goes through here, ranked — reservation rows
 * below product rows, then by id in byte order (the `COLLATE "C"` order Postgres locks them in) —
 * and a transaction only ever *waits* for rows ranked above everything it already holds. A row
 * ranked lower is taken with NOWAIT: that succeeds when the row is free (or already ours); when
 * another transaction holds it, this one fails at once with LockOrderError instead of joining a
 * wait cycle, and the kit retries the batch one message at a time, where every order locks in
 * rank order. Waits only ever go upwards, so no cycle, so no deadlock.
 *
 * (One wait is outside this scheme: claiming a reservation row can wait for another transaction
 * inserting the same order id, i.e. the same orders.created republished and handled by two
 * replicas at once. Postgres's deadlock detector still resolves that rare case.)
 */

export type LockKind = 'reservation' | 'product';

interface Rank {
  kind: LockKind;
  id: string;
}

const KIND_RANK: Record<LockKind, number> = { reservation: 0, product: 1 };

/** Byte order of the ids, as `COLLATE "C"` sorts them (product ids are ASCII; see PRODUCT_ID). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareRanks(a: Rank, b: Rank): number {
  return KIND_RANK[a.kind] - KIND_RANK[b.kind] || compareIds(a.id, b.id);
}

/** The highest-ranked row the transaction holds (none yet: it may wait for any row). */
const highest = txState<{ top?: Rank }>(() => ({}));

/** Notes a row the transaction now holds (a lock taken, or a row it inserted). */
export function holding(sql: TxSql, kind: LockKind, id: string): void {
  const held = highest(sql);
  if (!held.top || compareRanks({ kind, id }, held.top) > 0) held.top = { kind, id };
}

/** Another transaction holds a row this one may not wait for without risking a deadlock. */
export class LockOrderError extends Error {
  override readonly name = 'LockOrderError';
  constructor(
    readonly kind: LockKind,
    readonly ids: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(
      `${kind} row(s) ${ids.join(', ')} are locked by another transaction and rank below rows this transaction ` +
        `holds; retry the orders one at a time`,
      options,
    );
  }
}

const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Locks the given rows without breaking the lock order. `lock` runs the SELECT ... FOR UPDATE for
 * some ids, sorted (`ORDER BY ... COLLATE "C"`), waiting or with NOWAIT; `idOf` names a locked row.
 */
export async function lockInOrder<R>(
  sql: TxSql,
  kind: LockKind,
  ids: readonly string[],
  lock: (ids: string[], mode: 'wait' | 'nowait') => Promise<R[]>,
  idOf: (row: R) => string,
): Promise<R[]> {
  const sorted = [...new Set(ids)].sort(compareIds);
  const top = highest(sql).top;
  const below = top ? sorted.filter((id) => compareRanks({ kind, id }, top) <= 0) : [];
  const above = top ? sorted.filter((id) => compareRanks({ kind, id }, top) > 0) : sorted;
  const rows: R[] = [];
  if (below.length) {
    try {
      rows.push(...(await lock(below, 'nowait')));
    } catch (err) {
      if ((err as { code?: string }).code === LOCK_NOT_AVAILABLE) throw new LockOrderError(kind, below, { cause: err });
      throw err;
    }
  }
  if (above.length) rows.push(...(await lock(above, 'wait')));
  for (const r of rows) holding(sql, kind, idOf(r));
  return rows;
}
