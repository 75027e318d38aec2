import { periodic, type Lifecycle, type ServiceContext } from '@orderflow/kit';
import { applySaga } from '../orders/repository.js';
import { recordOutcome } from './handlers.js';
import type { SagaMetrics } from './metrics.js';

/**
 * Cancels orders stuck in pending/reserved longer than the saga timeout; the orders.cancelled
 * event makes inventory release the stock and payment refund a late charge.
 */
export function sagaTimeout(ctx: ServiceContext, metrics: SagaMetrics, timeoutMs: number): Lifecycle {
  const everyMs = Math.max(250, Math.min(5000, Math.floor(timeoutMs / 4)));
  const sweep = async () => {
    // Postgres: SKIP LOCKED lets replicas sweep side by side; each order is cancelled once.
    const lock = ctx.db.kind === 'postgres' ? 'FOR UPDATE SKIP LOCKED' : '';
    const cancelled = await ctx.db.tx(async (sql) => {
      const stuck = await sql.query<{ id: string }>(
        `SELECT id FROM orders WHERE status IN ('pending', 'reserved') AND created_at < now() - ($1::int * interval '1 millisecond')
         ORDER BY created_at LIMIT 200 ${lock}`,
        [timeoutMs],
      );
      const applied = [];
      for (const { id } of stuck) {
        const r = await applySaga(sql, ctx.names, id, { kind: 'timeout' });
        if (r) applied.push(r);
      }
      return applied;
    });
    for (const r of cancelled) recordOutcome(metrics, r);
    if (cancelled.length) {
      ctx.relay.committed(cancelled.flatMap((r) => (r.event ? [r.event] : [])));
      ctx.log.warn({ count: cancelled.length, timeoutMs }, 'saga.timed_out');
    }
  };
  return periodic({ name: 'saga-timeout', intervalMs: everyMs, log: ctx.log, failedEvent: 'saga.timeout_sweep_failed', round: sweep });
}
