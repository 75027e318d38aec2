import { defineService, httpOrderOutcomes, intSetting, readSetting } from '@orderflow/kit';
import { MIGRATIONS } from './migrations.js';
import { paymentRoutes } from './http/routes.js';
import { HttpPaymentGateway, type PaymentGateway } from './gateway/client.js';
import { gatewayPolicy, type ResilienceConfig } from './gateway/resilience.js';
import { paymentHandlers } from './payments/handlers.js';
import { paymentMetrics } from './payments/metrics.js';
import { PaymentProcessor, type InDoubtPolicy } from './payments/processor.js';
import { recoverySweep } from './payments/recovery-sweep.js';
import { refundSweep } from './payments/refund-sweep.js';

export interface PaymentServiceOptions {
  /** Replaces the HTTP client (the default talks to PAYMENT_GATEWAY_URL). */
  gateway?: PaymentGateway;
}

export function resilienceConfig(env: Record<string, string | undefined>): ResilienceConfig {
  return {
    timeoutMs: intSetting('GATEWAY_TIMEOUT_MS', 2000, env),
    maxRetries: intSetting('GATEWAY_MAX_RETRIES', 3, env),
    retryInitialDelayMs: intSetting('GATEWAY_RETRY_INITIAL_MS', 200, env),
    retryMaxDelayMs: intSetting('GATEWAY_RETRY_MAX_MS', 2000, env),
    breakerThreshold: intSetting('BREAKER_THRESHOLD', 5, env),
    breakerHalfOpenAfterMs: intSetting('BREAKER_HALF_OPEN_AFTER_MS', 10_000, env),
    maxConcurrent: intSetting('GATEWAY_MAX_CONCURRENCY', 16, env),
  };
}

export function inDoubtPolicy(env: Record<string, string | undefined>): InDoubtPolicy {
  return {
    initialMs: intSetting('PAYMENT_IN_DOUBT_CHECK_INITIAL_MS', 10_000, env),
    maxMs: intSetting('PAYMENT_IN_DOUBT_CHECK_MAX_MS', 3_600_000, env),
    horizonMs: intSetting('PAYMENT_IN_DOUBT_HORIZON_MS', 86_400_000, env),
    // The gateway's request deadline (same value as the gateway's, e.g. SANDBOX_MAX_PROCESSING_MS).
    maxProcessingMs: intSetting('PAYMENT_GATEWAY_MAX_PROCESSING_MS', 60_000, env),
  };
}

/**
 * payment-service charges for the saga: inventory.reserved charges the order at the gateway (emits
 * payments.completed or payments.failed); orders.cancelled stops a charge not yet made or refunds
 * one that was. Sweeps re-check charges in doubt and refund what a cancelled order was charged.
 */
export const PAYMENT_CONSUMERS = {
  'payment-inventory': { stream: 'INVENTORY', subject: 'inventory.reserved' },
  'payment-orders': { stream: 'ORDERS', subject: 'orders.cancelled' },
} as const;

export function paymentService(opts: PaymentServiceOptions = {}) {
  return defineService({
    name: 'payment-service',
    defaultPort: 3003,
    migrations: MIGRATIONS,
    consumers: PAYMENT_CONSUMERS,
    emits: ['payments.completed', 'payments.failed'],
    // One breaker per running service: handlers, the sweeps and /ready share it.
    setup: (ctx) => {
      const policy = gatewayPolicy(resilienceConfig(ctx.env), ctx.metrics.registry, ctx.log);
      const gateway = opts.gateway ?? new HttpPaymentGateway(readSetting('PAYMENT_GATEWAY_URL', ctx.env) ?? 'http://127.0.0.1:3004');
      const metrics = paymentMetrics(ctx.metrics.registry);
      const processor = new PaymentProcessor({ ctx, gateway, policy, metrics, inDoubt: inDoubtPolicy(ctx.env) });
      return { policy, processor, metrics };
    },
    routes: (ctx) => paymentRoutes(ctx),
    handlers: (_ctx, { processor }) => paymentHandlers(processor),
    background: (ctx, { processor, metrics }) => [
      recoverySweep(ctx, processor, metrics, {
        intervalMs: intSetting('PAYMENT_RECOVERY_INTERVAL_MS', 5000, ctx.env),
        afterMs: intSetting('PAYMENT_RECOVERY_AFTER_MS', 30_000, ctx.env),
      }),
      refundSweep({
        ctx,
        processor,
        metrics,
        orders: httpOrderOutcomes(readSetting('ORDER_SERVICE_URL', ctx.env) ?? 'http://127.0.0.1:3001'),
        intervalMs: intSetting('REFUND_SWEEP_INTERVAL_MS', 30_000, ctx.env),
        // The same SAGA_TIMEOUT_MS order-service uses: past it plus the margin, every saga has ended.
        afterMs: intSetting('SAGA_TIMEOUT_MS', 120_000, ctx.env) + intSetting('REFUND_SWEEP_MARGIN_MS', 60_000, ctx.env),
      }),
    ],
    // The breaker being open is not a reason to take the service out of rotation: it still
    // answers every order (with gateway_unavailable) and serves reads; it is shown, not checked.
    readyDetails: (_ctx, { policy }) => ({ circuitBreaker: policy.details() }),
  });
}
