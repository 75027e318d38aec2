import { PermanentGatewayError, TransientGatewayError, type ChargeResult } from '../gateway/client.js';
import { isBreakerOpen, isTimeout } from '../gateway/resilience.js';

/**
 * What a charge call (all its attempts) means for the order. Pure: the processor does the I/O.
 *
 * The rule for doubt: an attempt that got no answer (it timed out, or the connection dropped) or
 * an answer that does not say "nothing was done" (500, 502, 504) may have captured, or may still.
 * Whatever later attempts answer cannot undo that: a real gateway answers a retry with 409
 * "idempotency key in use" while the first request still runs, and even a 402 is an answer to the
 * retry, not to the first request. So any such attempt leaves a non-capture outcome in doubt, and
 * the charge is re-checked at the gateway later. An attempt refused before any work (4xx, 408,
 * 429, 503) settles nothing by itself but adds no doubt.
 */

export type Outcome =
  | { kind: 'captured'; chargeId: string }
  | { kind: 'declined'; detail: string; inDoubt: boolean }
  | { kind: 'unavailable'; detail: string; inDoubt: boolean };

export interface AttemptTally {
  /** Attempts sent to the gateway (the open breaker refuses without sending). */
  sent: number;
  /** Attempts whose answer rules out an effect we did not hear about. */
  clear: number;
}

export type CallResult = { ok: ChargeResult } | { err: unknown };

/** Statuses a gateway answers before doing any work: the attempt cannot have captured. */
const REFUSED_BEFORE_WORK = new Set([408, 429, 503]);

/** True when an attempt that threw cannot have captured anything. */
export function clearFailure(err: unknown): boolean {
  if (err instanceof PermanentGatewayError) return true;
  return err instanceof TransientGatewayError && err.status !== undefined && REFUSED_BEFORE_WORK.has(err.status);
}

export function chargeOutcome(result: CallResult, tally: AttemptTally): Outcome {
  const unclear = Math.max(0, tally.sent - tally.clear);
  const doubt = unclear > 0 ? `; ${unclear} attempt(s) got no clear answer and may have captured: outcome in doubt` : '';
  if ('ok' in result) {
    if (result.ok.kind === 'captured') return { kind: 'captured', chargeId: result.ok.chargeId };
    return { kind: 'declined', detail: `${result.ok.reason}${doubt}`, inDoubt: unclear > 0 };
  }
  const err = result.err;
  if (err instanceof PermanentGatewayError) {
    // Our request was refused (4xx): retrying cannot help. A clean refusal ends like a decline;
    // after an unclear attempt it says nothing about that attempt (409 "key in use").
    if (unclear > 0) return { kind: 'unavailable', detail: `${err.message}${doubt}`, inDoubt: true };
    return { kind: 'declined', detail: err.message, inDoubt: false };
  }
  const what = isBreakerOpen(err) ? 'circuit breaker open' : isTimeout(err) ? 'gateway timed out' : (err as Error).message;
  return { kind: 'unavailable', detail: `${what} after ${tally.sent} attempt(s)${doubt}`, inDoubt: unclear > 0 };
}
