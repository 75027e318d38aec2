import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  bulkhead,
  circuitBreaker,
  handleType,
  retry,
  timeout,
  wrap,
} from 'cockatiel';
import { setMaxListeners } from 'node:events';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '@orderflow/kit';
import { TransientGatewayError } from './client.js';

export interface ResilienceConfig {
  /** Per attempt. */
  timeoutMs: number;
  /** Retries after the first attempt, for transient errors only. */
  maxRetries: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  /** Consecutive failed attempts that open the breaker. */
  breakerThreshold: number;
  /** How long the breaker stays open before letting one trial call through (half-open). */
  breakerHalfOpenAfterMs: number;
  /** Attempts in flight at once; the rest wait their turn (not counted against their timeout). */
  maxConcurrent: number;
}

export type BreakerState = 'closed' | 'half-open' | 'open';

/** Gauge values: 0 closed, 1 half-open, 2 open. */
const GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

function stateName(s: CircuitState): BreakerState {
  if (s === CircuitState.Closed) return 'closed';
  if (s === CircuitState.HalfOpen) return 'half-open';
  return 'open'; // Open and Isolated both refuse calls
}

/** The breaker refused the call without trying: the gateway was failing a moment ago. */
export function isBreakerOpen(err: unknown): boolean {
  return err instanceof BrokenCircuitError;
}

export function isTimeout(err: unknown): boolean {
  return err instanceof TaskCancelledError;
}

export interface GatewayPolicy {
  /** Runs fn (one gateway call) under timeout → retry → breaker. fn gets the attempt's abort signal. */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
  readonly state: BreakerState;
  /** Attempts made, including retries (what the gateway actually saw, unless the breaker refused). */
  details(): Record<string, unknown>;
}

/**
 * Per attempt, an aggressive timeout aborts the request; the breaker counts each failed attempt
 * (transient errors and timeouts only: a decline is a normal answer and a 4xx is our bug, neither
 * says the gateway is unhealthy); the retry, outermost, retries transient errors with exponential
 * backoff but never a BrokenCircuitError, so once the breaker opens every call fails at once
 * instead of waiting on a gateway that is down. A bulkhead between the breaker and the timeout
 * bounds the attempts in flight: a burst (a consumer batch, redeliveries after a restart) queues
 * for the gateway instead of sending hundreds of requests at once, which would time out together
 * and open the breaker against a gateway that is only busy. The wait in its queue is not part of
 * an attempt's timeout, and the queue is unbounded (every charge is owed an answer).
 */
export function gatewayPolicy(cfg: ResilienceConfig, registry: Registry, log: Logger): GatewayPolicy {
  const transient = handleType(TransientGatewayError).orType(TaskCancelledError);
  // No abort when the attempt returns (cockatiel's default aborts every attempt's signal then):
  // a request that answered has nothing left to cancel, and each abort built a DOMException,
  // 2.5 % of payment-service's CPU at saturation. A timed-out attempt is still aborted.
  const perAttempt = timeout(cfg.timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
  const breaker = circuitBreaker(transient, {
    halfOpenAfter: cfg.breakerHalfOpenAfterMs,
    breaker: new ConsecutiveBreaker(cfg.breakerThreshold),
  });
  const retries = retry(transient, {
    maxAttempts: cfg.maxRetries,
    backoff: new ExponentialBackoff({ initialDelay: cfg.retryInitialDelayMs, maxDelay: cfg.retryMaxDelayMs }),
  });
  const limit = bulkhead(cfg.maxConcurrent, Number.MAX_SAFE_INTEGER);
  const policy = wrap(retries, breaker, limit, perAttempt);
  // cockatiel hangs every attempt's signal on the caller's, for as long as the call runs or waits
  // in the bulkhead: called without one, every call of the process shares cockatiel's own
  // never-aborted signal, whose listener limit (10) a burst of charges passes and Node warns of
  // a leak. The queue is unbounded by design and each listener goes when its call settles, so
  // the calls share this signal, without a limit.
  const calls = new AbortController().signal;
  setMaxListeners(0, calls);

  const gauge = new Gauge({
    name: 'orderflow_circuit_breaker_state',
    help: 'Payment gateway circuit breaker: 0 closed, 1 half-open, 2 open',
    labelNames: ['breaker'],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'orderflow_circuit_breaker_transitions_total',
    help: 'Payment gateway circuit breaker state changes, by new state',
    labelNames: ['breaker', 'to'],
    registers: [registry],
  });
  const attempts = new Counter({
    name: 'orderflow_payment_gateway_attempts_total',
    help: 'Calls to the payment gateway by outcome (rejected = refused by the open breaker, not sent)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  gauge.set({ breaker: 'payment-gateway' }, 0);
  let lastChange = new Date().toISOString();
  breaker.onStateChange((s) => {
    const name = stateName(s);
    gauge.set({ breaker: 'payment-gateway' }, GAUGE[name]);
    transitions.inc({ breaker: 'payment-gateway', to: name });
    lastChange = new Date().toISOString();
    log.warn({ breaker: 'payment-gateway', state: name }, 'circuit_breaker.state_changed');
  });
  retries.onRetry((r) =>
    log.info({ attempt: r.attempt, delayMs: r.delay, err: 'error' in r ? r.error.message : undefined }, 'gateway.retry'),
  );

  return {
    async execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
      try {
        // The signal comes from the innermost policy (the timeout): it aborts this attempt's request.
        return await policy.execute(async ({ signal }) => {
          try {
            const out = await fn(signal);
            attempts.inc({ outcome: 'answered' });
            return out;
          } catch (err) {
            attempts.inc({
              outcome: signal.aborted ? 'timeout' : err instanceof TransientGatewayError ? 'transient_error' : 'other_error',
            });
            throw err;
          }
        }, calls);
      } catch (err) {
        if (err instanceof BrokenCircuitError) attempts.inc({ outcome: 'rejected' });
        throw err;
      }
    },
    get state() {
      return stateName(breaker.state);
    },
    details: () => ({
      state: stateName(breaker.state),
      since: lastChange,
      threshold: cfg.breakerThreshold,
      halfOpenAfterMs: cfg.breakerHalfOpenAfterMs,
    }),
  };
}
