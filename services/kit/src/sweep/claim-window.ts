/**
 * What one round of an order-outcome sweep claims (orderOutcomeSweep's `claim`): the same for
 * inventory's stale holds and payment's unsettled captures, so both services size their rounds and
 * leases alike and a change to the policy is made once.
 */

/** The arguments of a sweep's claim statement. */
export interface ClaimWindow {
  /** Rows younger than this still belong to a saga that may settle them. */
  olderThanMs: number;
  /** Rows claimed per round. */
  limit: number;
  /** A claimed row is not claimed again by anyone before this, unless its check reschedules it. */
  leaseMs: number;
  /** FOR UPDATE SKIP LOCKED: replicas share the rows instead of queueing on each other's (Postgres only; PGlite has one writer). */
  skipLocked: boolean;
}

/**
 * The claim window of a sweep running every `intervalMs`: rows older than `afterMs`, `batchSize`
 * (100) a round, leased for two intervals but at least a minute, so a slow round is not claimed twice.
 */
export function claimWindow(o: { intervalMs: number; afterMs: number; batchSize?: number }, db: { kind: string }): ClaimWindow {
  return {
    olderThanMs: o.afterMs,
    limit: o.batchSize ?? 100,
    leaseMs: Math.max(60_000, 2 * o.intervalMs),
    skipLocked: db.kind === 'postgres',
  };
}
