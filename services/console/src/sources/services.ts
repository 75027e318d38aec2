/**
 * The services' public HTTP endpoints: order-service's stats / lookups / metrics and every
 * service's /ready. A metrics sampler keeps recent scrapes of the accepted→final histogram so
 * p50/p99 describe the last minutes, not the whole process lifetime.
 */
import type { ConsoleConfig } from '../config.js';
import type { OrderHistoryEntry, OrderStats, OrderView, SagaFigures, ServiceReadiness } from '../web/api-types.js';
import { parsePrometheus, sumBy } from '@orderflow/kit';
import { bucketDelta, histogramBuckets, histogramQuantile, type Buckets } from './histogram.js';

export type { OrderHistoryEntry, OrderStats, OrderView, SagaFigures, ServiceReadiness };

export type FetchFn = typeof fetch;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(f: FetchFn, url: string, timeoutMs = 3000): Promise<T> {
  const r = await f(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!r.ok) throw new HttpError(r.status, `${url} answered ${r.status}`);
  return (await r.json()) as T;
}

const E2E = 'orderflow_order_e2e_seconds';
const OUTCOMES = 'orderflow_saga_outcomes_total';

export class ServicesClient {
  readonly #scrapes: Array<{ t: number; confirmed: Buckets }> = [];

  constructor(
    private readonly urls: ConsoleConfig['services'],
    private readonly f: FetchFn = fetch,
    /** How far back p50/p99 look. */
    private readonly latencyWindowMs = 5 * 60_000,
  ) {}

  stats(minutes: number): Promise<OrderStats> {
    return getJson<OrderStats>(this.f, `${this.urls.order}/orders/stats?minutes=${minutes}`);
  }

  async order(orderId: string): Promise<OrderView | undefined> {
    try {
      return await getJson<OrderView>(this.f, `${this.urls.order}/orders/${encodeURIComponent(orderId)}`);
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return undefined;
      throw err;
    }
  }

  async ordersByCorrelation(correlationId: string): Promise<OrderView[]> {
    const url = `${this.urls.order}/orders?correlationId=${encodeURIComponent(correlationId)}`;
    return (await getJson<{ orders: OrderView[] }>(this.f, url)).orders;
  }

  /** Scrapes order-service's /metrics and returns the saga figures; call it periodically. */
  async scrapeSaga(now = Date.now()): Promise<SagaFigures> {
    const r = await this.f(`${this.urls.order}/metrics`, { signal: AbortSignal.timeout(3000) });
    if (!r.ok) throw new HttpError(r.status, `${this.urls.order}/metrics answered ${r.status}`);
    const samples = parsePrometheus(await r.text());
    const confirmed = histogramBuckets(samples, E2E, { outcome: 'confirmed' });
    this.#scrapes.push({ t: now, confirmed });
    while (this.#scrapes.length > 2 && this.#scrapes[1]!.t <= now - this.latencyWindowMs) this.#scrapes.shift();
    const base = this.#scrapes[0]!.t <= now - this.latencyWindowMs ? this.#scrapes[0] : undefined;
    const window = bucketDelta(confirmed, base?.confirmed);
    return {
      outcomes: sumBy(samples, OUTCOMES, 'outcome'),
      cancelReasons: sumBy(samples, OUTCOMES, 'reason', { outcome: 'cancelled' }),
      latency: {
        p50: histogramQuantile(0.5, window),
        p99: histogramQuantile(0.99, window),
        count: window.at(-1)?.count ?? 0,
        windowSeconds: base ? Math.round((now - base.t) / 1000) : 0,
      },
      scrapedAt: new Date(now).toISOString(),
    };
  }

  /** Each service's /ready: up (200), not ready (503 with its JSON), or unreachable. */
  async readiness(): Promise<ServiceReadiness[]> {
    const { order, inventory, payment } = this.urls;
    const entries = Object.entries({ 'order-service': order, 'inventory-service': inventory, 'payment-service': payment });
    return Promise.all(
      entries.map(async ([name, url]) => {
        try {
          const r = await this.f(`${url}/ready`, { signal: AbortSignal.timeout(2000) });
          if (r.ok) return { name, url, ready: true };
          const body = (await r.json().catch(() => ({}))) as { down?: Record<string, string> };
          const down = body.down
            ? Object.entries(body.down)
                .map(([k, v]) => `${k}: ${v}`)
                .join('; ')
            : undefined;
          return { name, url, ready: false, detail: down ?? `HTTP ${r.status}` };
        } catch (err) {
          return { name, url, ready: false, detail: `unreachable: ${(err as Error).message}` };
        }
      }),
    );
  }
}
