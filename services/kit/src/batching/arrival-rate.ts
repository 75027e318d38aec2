/**
 * How fast things have been arriving lately: a counter that decays exponentially with time
 * constant `tauMs` (each arrival adds 1/tau, and the sum fades by e^(-dt/tau)). At a steady rate
 * it settles on that rate; after a quiet spell it falls towards zero without any timer, so a
 * lone arrival at rest reads as "nobody is coming".
 *
 * The lingers (linger.ts) ask it whether waiting for company is worth it.
 */
export class ArrivalRate {
  #rate = 0;
  #at = Number.NEGATIVE_INFINITY;

  constructor(private readonly tauMs = 1000) {
    if (!(tauMs > 0)) throw new RangeError(`ArrivalRate: tauMs must be positive, got ${tauMs}`);
  }

  /** Counts one arrival at `now` (ms, a monotonic clock such as performance.now()). */
  note(now: number): void {
    this.#rate = this.perSecond(now) + 1000 / this.tauMs;
    this.#at = Math.max(this.#at, now);
  }

  /** The estimated arrivals per second at `now`. */
  perSecond(now: number): number {
    if (this.#at === Number.NEGATIVE_INFINITY) return 0;
    return this.#rate * Math.exp(-Math.max(0, now - this.#at) / this.tauMs);
  }

  /** Arrivals expected within the next `ms` at the current rate. */
  expectedWithin(ms: number, now: number): number {
    return (this.perSecond(now) * ms) / 1000;
  }
}
