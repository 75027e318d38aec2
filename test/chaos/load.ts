/**
 * The chaos load generator: places orders at a steady rate, each with its own Idempotency-Key, and
 * behaves like a patient client — a refused connection, a timeout or a 503 is retried with the
 * same key (waiting at least what Retry-After asks) until `giveUpMs` has passed. Accepted = the
 * order id a 202 (or its 200 replay) returned. Every 5xx is counted; only a 503 that says when to
 * come back (Retry-After, problem+json) is the platform keeping its promise, any other 5xx is a bug.
 */
import { RetryDelays } from '@orderflow/kit';

export interface LoadTarget {
  /** Base URL of an order-service instance that is up now (looked up per attempt). */
  orderUrl(): string;
}

export interface LoadOptions {
  orders: number;
  /** Orders per second offered. */
  rate: number;
  /** How long one order's client keeps retrying. */
  giveUpMs: number;
  productFor(i: number): string;
}

export interface Bad5xx {
  status: number;
  retryAfter: string | null;
  contentType: string | null;
  body: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LoadGenerator {
  sent = 0;
  retries = 0;
  lastError = '';
  /** 503 with Retry-After and problem+json: "come back later", as promised. */
  unavailable = 0;
  /** Every other 5xx answer (500, 502, a 503 without Retry-After, …): each one is a failure. */
  readonly bad5xx: Bad5xx[] = [];
  readonly accepted = new Set<string>();
  #waiters: Array<{ n: number; resolve: () => void }> = [];
  #stopped = false;

  constructor(
    private readonly target: LoadTarget,
    private readonly o: LoadOptions,
  ) {}

  waitSent(n: number): Promise<void> {
    if (this.sent >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  /** Stops sending and retrying (the scenario is being torn down). */
  stop(): void {
    this.#stopped = true;
  }

  async run(): Promise<void> {
    const t0 = Date.now();
    const inflight = new Set<Promise<void>>();
    const key = `chaos-${t0}-${Math.random().toString(36).slice(2, 8)}`;
    for (let i = 0; i < this.o.orders && !this.#stopped; i++) {
      const due = t0 + (i * 1000) / this.o.rate;
      if (due > Date.now()) await sleep(due - Date.now());
      const pr: Promise<void> = this.#place(i, `${key}-${i}`).finally(() => inflight.delete(pr));
      inflight.add(pr);
      this.sent++;
      this.#waiters = this.#waiters.filter((w) => (w.n <= this.sent ? (w.resolve(), false) : true));
    }
    await Promise.all(inflight);
    for (const w of this.#waiters) w.resolve();
  }

  async #place(i: number, idemKey: string): Promise<void> {
    const body = JSON.stringify({ customerId: `chaos-${i}`, items: [{ productId: this.o.productFor(i), quantity: 1 }] });
    const giveUp = Date.now() + this.o.giveUpMs;
    const delays = new RetryDelays({ initialMs: 200, maxMs: 5_000 });
    while (!this.#stopped) {
      let retryAfterMs = 0;
      try {
        const r = await fetch(`${this.target.orderUrl()}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idemKey },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await r.text();
        if (r.status === 202 || r.status === 200) {
          const j = JSON.parse(text) as { orderId?: string };
          if (j.orderId) {
            this.accepted.add(j.orderId);
            return;
          }
        }
        this.lastError = `HTTP ${r.status}`;
        if (r.status < 500) return; // a 4xx will not change on retry
        const retryAfter = r.headers.get('retry-after');
        const contentType = r.headers.get('content-type');
        if (r.status === 503 && retryAfter && contentType?.startsWith('application/problem+json')) {
          this.unavailable++;
          retryAfterMs = Number(retryAfter) * 1000 || 0;
        } else {
          this.bad5xx.push({ status: r.status, retryAfter, contentType, body: text.slice(0, 300) });
        }
      } catch (err) {
        this.lastError = (err as Error).message;
      }
      if (Date.now() > giveUp) return;
      this.retries++;
      // Exponential with jitter up to 5 s (cockatiel), never sooner than the server asked.
      await sleep(Math.max(retryAfterMs, delays.next()));
    }
  }
}
