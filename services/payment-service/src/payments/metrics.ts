import { Counter, Gauge, type Registry } from 'prom-client';

export function paymentMetrics(registry: Registry) {
  return {
    outcomes: new Counter({
      name: 'orderflow_payments_total',
      help: 'Payment outcomes (captured, declined, gateway_unavailable, order_cancelled, refunded)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    inDoubt: new Gauge({
      name: 'orderflow_payments_in_doubt',
      help:
        'Charges whose outcome at the gateway is unknown: checking (re-checked with backoff) or unresolved ' +
        '(past the horizon, needs a person)',
      labelNames: ['state'],
      registers: [registry],
    }),
    inDoubtChecks: new Counter({
      name: 'orderflow_payment_in_doubt_checks_total',
      help:
        'Re-checks of charges in doubt by result: capture_refunded, never_captured (nothing found past the ' +
        'gateway processing deadline), nothing_captured, lookup_failed, refund_failed, gave_up',
      labelNames: ['result'],
      registers: [registry],
    }),
    refundSweeper: new Counter({
      name: 'orderflow_payment_refund_sweeper_total',
      help:
        'Refund sweeper actions on captures whose order outcome was never heard: refund_owed, ' +
        'order_confirmed, already_settled, order_open, unknown_order, lookup_failed, failed',
      labelNames: ['action'],
      registers: [registry],
    }),
  };
}

export type PaymentMetrics = ReturnType<typeof paymentMetrics>;
