import { observeWithTraceId, type HandlerContext, type HandlerMap, type ServiceContext } from '@orderflow/kit';
import type { ORDER_CONSUMERS } from '../definition.js';
import { applySaga, type Applied } from '../orders/repository.js';
import type { SagaInput } from './transitions.js';
import type { SagaMetrics } from './metrics.js';

/** order-service's side of the saga: results from inventory and payment move the order. */
export function sagaHandlers(ctx: ServiceContext, metrics: SagaMetrics): HandlerMap<typeof ORDER_CONSUMERS> {
  const apply = async ({ sql, afterCommit, enqueued, peers }: HandlerContext, orderId: string, input: SagaInput) => {
    const r = await applySaga(sql, ctx.names, orderId, input, peers);
    if (!r) {
      ctx.log.warn({ orderId, input: input.kind }, 'saga.unknown_order');
      return;
    }
    if (r.event) enqueued([r.event]);
    afterCommit(async () => recordOutcome(metrics, r));
  };
  return {
    'order-inventory': {
      'inventory.reserved': (hc) => apply(hc, hc.event.data.orderId, { kind: 'reserved', amount: hc.event.data.amount }),
      'inventory.rejected': (hc) => apply(hc, hc.event.data.orderId, { kind: 'rejected', reason: hc.event.data.reason }),
    },
    'order-payments': {
      'payments.completed': (hc) => apply(hc, hc.event.data.orderId, { kind: 'paid' }),
      'payments.failed': (hc) => apply(hc, hc.event.data.orderId, { kind: 'payment_failed', reason: hc.event.data.reason }),
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
