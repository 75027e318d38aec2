import type { HandlerContext, HandlerMap, ServiceContext } from '@orderflow/kit';
import type { INVENTORY_CONSUMERS } from '../definition.js';
import { cancel, commit, release, reserve, type SettleOutcome } from './repository.js';
import type { StockMetrics } from './metrics.js';

/**
 * inventory-service's side of the saga. Every handler runs in the consumer's transaction (the
 * event id already recorded), so state changes and emitted events commit together. Each passes
 * its HandlerContext on as the batch: the first event of a transaction locks for the others.
 */
export function stockHandlers(ctx: ServiceContext, metrics: StockMetrics): HandlerMap<typeof INVENTORY_CONSUMERS> {
  const count = (hc: HandlerContext, result: string) =>
    hc.afterCommit(async () => void metrics.outcomes.inc({ event: hc.event.type, result }));

  /** Emits inventory.released for a release that happened, logs a no-op. */
  const settled = (hc: HandlerContext, orderId: string, correlationId: string, out: SettleOutcome) => {
    count(hc, out.kind);
    if (out.kind === 'released') {
      hc.emit('inventory.released', {
        version: 'v1',
        orderId,
        correlationId,
        occurredAt: new Date().toISOString(),
        reason: out.reservation.reason ?? hc.event.type,
      });
    } else if (out.kind === 'noop') {
      hc.log.info({ orderId, event: hc.event.type, status: out.status ?? 'none' }, 'inventory.nothing_held');
    }
  };

  return {
    'inventory-orders': {
      'orders.created': async (hc) => {
        const d = hc.event.data;
        const out = await reserve(hc.sql, { orderId: d.orderId, items: d.items, currency: d.currency, correlationId: d.correlationId }, hc);
        count(hc, out.kind);
        const base = { version: 'v1' as const, orderId: d.orderId, correlationId: d.correlationId, occurredAt: new Date().toISOString() };
        if (out.kind === 'reserved') {
          hc.emit('inventory.reserved', { ...base, currency: d.currency, items: out.items, amount: out.amount });
        } else if (out.kind === 'rejected') {
          hc.emit('inventory.rejected', { ...base, reason: out.reason, shortages: out.shortages });
        } else {
          // A republished orders.created, or one arriving after the order was cancelled (tombstone).
          hc.log.info({ orderId: d.orderId, status: out.status }, 'inventory.duplicate_order');
        }
      },
      'orders.confirmed': async (hc) => {
        const d = hc.event.data;
        const out = await commit(hc.sql, d.orderId, hc);
        count(hc, out.kind);
        if (out.kind === 'noop') ctx.log.warn({ orderId: d.orderId, status: out.status ?? 'none' }, 'inventory.confirm_without_hold');
      },
      'orders.cancelled': async (hc) => {
        const d = hc.event.data;
        settled(hc, d.orderId, d.correlationId, await cancel(hc.sql, d.orderId, d.reason, d.correlationId, hc));
      },
    },
    'inventory-payments': {
      'payments.failed': async (hc) => {
        const d = hc.event.data;
        settled(hc, d.orderId, d.correlationId, await release(hc.sql, d.orderId, d.reason, hc));
      },
    },
  };
}
