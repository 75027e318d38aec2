/**
 * What order-service, the saga's owner, says became of an order. The sweepers (inventory's stock
 * sweeper, payment's refund sweep) ask it because the outcome messages (orders.confirmed /
 * orders.cancelled) are exactly what may have been lost: no state of their own can stand in for
 * them, while order-service's row is durable and authoritative.
 */

export type OrderOutcome =
  | { kind: 'final'; status: 'confirmed' | 'cancelled'; reason?: string }
  /** The saga is still running (or order-service has not timed it out yet). */
  | { kind: 'open'; status: string }
  /** order-service does not know the order: never guess, leave the stock as it is. */
  | { kind: 'unknown' };

export interface OrderOutcomes {
  outcome(orderId: string, signal?: AbortSignal): Promise<OrderOutcome>;
}

/** order-service did not answer (unreachable, 5xx, 429): nothing can be decided now. */
export class OrderServiceUnavailableError extends Error {
  override readonly name = 'OrderServiceUnavailableError';
}

/** GET <baseUrl>/orders/:id, one bounded attempt; the sweeper's next round is the retry. */
export function httpOrderOutcomes(baseUrl: string, timeoutMs = 5_000): OrderOutcomes {
  return {
    async outcome(orderId, signal) {
      const url = new URL(`/orders/${encodeURIComponent(orderId)}`, baseUrl);
      let res: Response;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        res = await fetch(url, { headers: { accept: 'application/json' }, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      } catch (err) {
        throw new OrderServiceUnavailableError(
          `order-service at ${baseUrl} did not answer for order ${orderId}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (res.status === 404) {
        await res.body?.cancel();
        return { kind: 'unknown' };
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new OrderServiceUnavailableError(`order-service at ${baseUrl} answered ${res.status} for order ${orderId}`);
      }
      const body = (await res.json()) as { status?: unknown; reason?: unknown };
      if (typeof body.status !== 'string')
        throw new OrderServiceUnavailableError(`order-service at ${baseUrl} answered without a status for order ${orderId}`);
      if (body.status === 'confirmed' || body.status === 'cancelled') {
        return { kind: 'final', status: body.status, ...(typeof body.reason === 'string' ? { reason: body.reason } : {}) };
      }
      return { kind: 'open', status: body.status };
    },
  };
}
