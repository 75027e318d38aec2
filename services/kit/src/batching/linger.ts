import { ArrivalRate } from './arrival-rate.js';

/**
 * Expected arrivals within a linger below which it is not waited out (a 39 % chance of any
 * company at all): the lingers pay at middling load and cost nothing at rest.
 */
export const LINGER_MIN_EXPECTED = 0.5;

/**
 * Whether a batcher (a consumer's batch, a group commit) waits for company before it starts: a
 * wait of `ms` only pays if another arrival is likely within it, and at rest it is pure latency.
 * Each arrival is judged by the ones before it, so a lone arrival at rest never waits.
 */
export class Linger {
  readonly ms: number;
  readonly #minExpected: number;
  readonly #arrivals = new ArrivalRate();

  /** `minExpected` 0 waits whatever the rate; `ms` 0 never waits. */
  constructor(ms = 0, minExpected = LINGER_MIN_EXPECTED) {
    this.ms = Math.max(0, ms);
    this.#minExpected = Math.max(0, minExpected);
  }

  /**
   * Counts an arrival at `now` (performance.now()); true if the arrivals before it predict enough
   * company within `ms` for a batch it would start to wait.
   */
  arrive(now: number): boolean {
    if (this.ms === 0) return false;
    const likely = this.#minExpected === 0 || this.#arrivals.expectedWithin(this.ms, now) >= this.#minExpected;
    this.#arrivals.note(now);
    return likely;
  }
}
