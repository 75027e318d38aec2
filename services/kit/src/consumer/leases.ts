import type { JsMsg } from '@nats-io/jetstream';

/**
 * Every message the client holds — running, queued for a worker, or held while the consumer is
 * paused — from its delivery until it is acked, nak'ed or terminated. Each is kept alive with
 * working() before its effective ack wait runs out, so the server never takes back (and
 * redelivers with a higher delivery count) a message we still mean to handle.
 *
 * The effective ack wait depends on the delivery: with a backoff list the server times delivery n
 * out after backoff[n-1] (the last entry beyond the list), not after ack_wait.
 */
export class LeaseKeeper {
  /** Message → when it was delivered or last touched (performance.now()). */
  readonly #touched = new Map<JsMsg, number>();
  readonly #tickMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly ackWaitFor: (deliveryCount: number) => number,
    /** The shortest ack wait any delivery can have: ticks come often enough for it. */
    shortestAckWaitMs: number,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    // A message is touched once a third of its ack wait has passed; ticking at a sixth means the
    // touch goes out before half of it has, leaving the other half for a busy event loop.
    this.#tickMs = Math.max(10, Math.floor(shortestAckWaitMs / 6));
  }

  get size(): number {
    return this.#touched.size;
  }

  add(msg: JsMsg): void {
    this.#touched.set(msg, this.now());
    this.#timer ??= setInterval(() => this.tick(), this.#tickMs);
    this.#timer.unref?.();
  }

  /** The message is settled (acked, nak'ed, terminated) or given up: no more heartbeats. */
  release(msg: JsMsg): void {
    this.#touched.delete(msg);
    if (this.#touched.size === 0) this.#stopTimer();
  }

  has(msg: JsMsg): boolean {
    return this.#touched.has(msg);
  }

  held(): JsMsg[] {
    return [...this.#touched.keys()];
  }

  /** Sends working() for each message a third of whose ack wait has passed since its last touch. */
  tick(): void {
    const now = this.now();
    for (const [msg, at] of this.#touched) {
      if (now - at < this.ackWaitFor(msg.info.deliveryCount) / 3) continue;
      try {
        msg.working();
      } catch (err) {
        // A connection closed for good: the server redelivers this one on the new connection.
        this.onError(err);
      }
      this.#touched.set(msg, now);
    }
  }

  stop(): void {
    this.#touched.clear();
    this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Delivery n's ack wait: backoff[n-1] (clamped to the list) when a backoff list exists, else ack_wait. */
export function effectiveAckWait(ackWaitMs: number, backoffMs: readonly number[], deliveryCount: number): number {
  if (!backoffMs.length) return ackWaitMs;
  return backoffMs[Math.min(Math.max(deliveryCount, 1) - 1, backoffMs.length - 1)]!;
}
