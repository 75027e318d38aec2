import { bulkhead } from 'cockatiel';
import { periodic, type Lifecycle, type ServiceContext } from '@orderflow/kit';
import type { PaymentMetrics } from './metrics.js';
import type { PaymentProcessor } from './processor.js';
import { claimInDoubtDue, countInDoubt, rowsNeedingWork } from './repository.js';

export interface RecoverySweepOptions {
  intervalMs: number;
  /** A `charging` row or an owed refund untouched this long is resumed (longer than one charge with all its retries can take). */
  afterMs: number;
  /** Gateway work at once. */
  concurrency?: number;
}

/**
 * Recovery sweep: resumes charges left `charging` by a crash after the ack, retries refunds the
 * gateway refused, and re-checks charges in doubt whose next check is due. Replicas may run it
 * side by side: every step is guarded by the row's state, and in-doubt checks are claimed.
 */
export function recoverySweep(
  ctx: ServiceContext,
  processor: PaymentProcessor,
  metrics: PaymentMetrics,
  o: RecoverySweepOptions,
): Lifecycle {
  const gatewayWork = bulkhead(o.concurrency ?? 4, Number.MAX_SAFE_INTEGER);
  const leaseMs = Math.max(60_000, 2 * o.intervalMs);
  const round = async (signal: AbortSignal): Promise<void> => {
    const stuck = (await rowsNeedingWork(ctx.db, o.afterMs, 100)).filter((r) => !processor.isBusy(r.order_id));
    const inDoubt = await claimInDoubtDue(ctx.db, { limit: 100, leaseMs, skipLocked: ctx.db.kind === 'postgres' });
    await Promise.all([
      ...stuck.map((r) => gatewayWork.execute(() => (signal.aborted ? undefined : processor.resume(r)))),
      ...inDoubt.map((orderId) => gatewayWork.execute(() => (signal.aborted ? undefined : processor.recheckInDoubt(orderId)))),
    ]);
    if (stuck.length) ctx.log.info({ rows: stuck.length }, 'payment.recovery_sweep');
    const n = await countInDoubt(ctx.db);
    metrics.inDoubt.set({ state: 'checking' }, n.checking);
    metrics.inDoubt.set({ state: 'unresolved' }, n.unresolved);
  };
  return periodic({ name: 'recovery', intervalMs: o.intervalMs, log: ctx.log, failedEvent: 'payment.sweep_round_failed', round });
}
