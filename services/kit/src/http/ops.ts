import { Hono } from 'hono';
import { Gauge, type Registry } from 'prom-client';
import { exposition } from './metrics-exposition.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean | string> | boolean | string;
}

export interface OpsOptions {
  registry: Registry;
  checks: ReadinessCheck[];
  /** False once shutdown begins: /ready answers 503 before anything else stops. */
  accepting: () => boolean;
  details?: () => Record<string, unknown>;
  /**
   * Liveness: true, or why the process cannot recover by waiting (e.g. a NATS connection closed
   * for good). /health answers 503 with that reason, so an orchestrator restarts the process.
   */
  live?: () => true | string;
  /** Retry-After (seconds) on a 503 from /ready; 5 by default. */
  retryAfterSeconds?: number;
}

/**
 * /health (liveness), /ready (dependencies: 503 naming each one that is down, with Retry-After),
 * /metrics (Prometheus; OpenMetrics when the scraper asks for it) as a sub-app.
 */
export function opsApp(o: OpsOptions): Hono {
  const app = new Hono();
  /** What is down (empty when ready): the body of /ready and the value of orderflow_ready. */
  const unready = async (): Promise<Record<string, string>> => {
    const down: Record<string, string> = {};
    if (!o.accepting()) down.shutdown = 'shutting down';
    await Promise.all(
      o.checks.map(async ({ name, check }) => {
        try {
          const r = await Promise.race([
            Promise.resolve(check()),
            new Promise<string>((resolve) => setTimeout(() => resolve('check timed out'), 2000).unref()),
          ]);
          if (r !== true) down[name] = typeof r === 'string' ? r : 'down';
        } catch (err) {
          down[name] = (err as Error).message;
        }
      }),
    );
    return down;
  };
  // Readiness as Prometheus sees it (the OrderflowServiceNotReady alert): the same checks, run at
  // scrape time, so no probe of its own is needed to notice a pod that takes no traffic.
  if (!o.registry.getSingleMetric('orderflow_ready')) {
    new Gauge({
      name: 'orderflow_ready',
      help: '1 when GET /ready would answer 200 (NATS, database and streams available), else 0',
      registers: [o.registry],
      async collect() {
        this.set(Object.keys(await unready()).length === 0 ? 1 : 0);
      },
    });
  }
  app.get('/health', (c) => {
    const live = o.live?.() ?? true;
    return live === true ? c.json({ status: 'ok' }) : c.json({ status: 'failing', reason: live }, 503);
  });
  app.get('/ready', async (c) => {
    const down = await unready();
    const ok = Object.keys(down).length === 0;
    if (!ok) c.header('Retry-After', String(o.retryAfterSeconds ?? 5));
    return c.json({ status: ok ? 'ready' : 'not ready', down, ...(o.details?.() ?? {}) }, ok ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const { body, contentType } = await exposition(o.registry, c.req.header('accept'));
    return c.text(body, 200, { 'content-type': contentType });
  });
  return app;
}
