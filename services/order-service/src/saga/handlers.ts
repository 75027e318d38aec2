import { observeWithTraceId, type HandlerMap, type ServiceContext } from '@orderflow/kit';
import type { ORDER_CONSUMERS } from '../definition.js';
import { applySaga, type Applied } from '../orders/repository.js';
import type { SagaInput } from './transitions.js';
import type { SagaMetrics } from './metrics.js';

/** order-service's side of the saga: results from inventory and payment move the order. */
export function sagaHandlers(ctx: ServiceContext, metrics: SagaMetrics): HandlerMap<typeof ORDER_CONSUMERS> {
  const apply = async (
    sql: Parameters<typeof applySaga>[0],
    orderId: string,
    input: SagaInput,
    afterCommit: (fn: () => Promise<void>) => void,
  ) => {
    const r = await applySaga(sql, ctx.names, orderId, input);
    if (!r) {
      ctx.log.warn({ orderId, input: input.kind }, 'saga.unknown_order');
      return;
    }
    afterCommit(async () => recordOutcome(metrics, r));
  };
  return {
    'order-inventory': {
      'inventory.reserved': ({ sql, event, afterCommit }) =>
        apply(sql, event.data.orderId, { kind: 'reserved', amount: event.data.amount }, afterCommit),
      'inventory.rejected': ({ sql, event, afterCommit }) =>
        apply(sql, event.data.orderId, { kind: 'rejected', reason: event.data.reason }, afterCommit),
    },
    'order-payments': {
      'payments.completed': ({ sql, event, afterCommit }) => apply(sql, event.data.orderId, { kind: 'paid' }, afterCommit),
      'payments.failed': ({ sql, event, afterCommit }) =>
        apply(sql, event.data.orderId, { kind: 'payment_failed', reason: event.data.reason }, afterCommit),
    },
  };
}

export function recordOutcome(metrics: SagaMetrics, r: Applied): void {
  if (r.before === r.t.status) return;
  if (r.t.status !== 'confirmed' && r.t.status !== 'cancelled') return;
  const reason = r.t.reason ?? 'none';
  metrics.outcomes.inc({ outcome: r.t.status, reason });
  observeWithTraceId(metrics.e2e, { outcome: r.t.status }, (Date.now() - Date.parse(r.order.createdAt)) / 1000);
}
