/**
 * GET /api/orders/lookup?q=<order id | correlation id>: the orders (from order-service) and their
 * events across the platform's streams.
 */
import { Hono } from 'hono';
import { HttpProblem } from '@orderflow/kit';
import { orderTimeline } from '../sources/timeline.js';
import type { Lookup, OrderView } from '../web/api-types.js';
import { fromService, liveConnection, onPlatformStreams } from './platform.js';
import type { RouteDeps } from './routes.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HOUR_MS = 3_600_000;
// Clock skew between the hosts that stamped the order and the messages.
const SKEW_MS = 60_000;

export function orderLookupRoutes({ config, nats, names, topology, services }: RouteDeps): Hono {
  const dlqStream = names.stream('DLQ');
  const streams = topology.streams.map((s) => s.name);
  const app = new Hono();

  app.get('/orders/lookup', async (c) => {
    const q = (c.req.query('q') ?? '').trim();
    if (!q || q.length > 255) throw new HttpProblem(400, 'give an order id or a correlation id in ?q=');
    const isId = UUID.test(q);
    const orderService = <T>(fn: () => Promise<T>) => fromService('order-service', config.retryAfterSeconds, fn);
    let orders: OrderView[] = isId ? [await orderService(() => services.order(q))].filter((o) => o !== undefined) : [];
    const byCorrelation = orders.length === 0;
    if (byCorrelation) orders = await orderService(() => services.ordersByCorrelation(q));
    const conn = liveConnection(nats);
    const created = orders.map((o) => Date.parse(o.createdAt ?? '')).filter(Number.isFinite);
    // From a little before the first order, or the last hour.
    const since = new Date((created.length ? Math.min(...created) : Date.now() - HOUR_MS) - SKEW_MS);
    const orderIds = new Set(orders.length ? orders.map((o) => o.orderId) : isId ? [q] : []);
    const { events, truncated } = await onPlatformStreams(() =>
      orderTimeline(
        { js: conn.js, names, streams, dlqStream, jaegerUiUrl: config.jaegerUiUrl },
        { orderIds, correlationId: byCorrelation ? q : undefined, since },
      ),
    );
    const body: Lookup = {
      query: q,
      matchedBy: byCorrelation ? 'correlationId' : 'orderId',
      jaegerUiUrl: config.jaegerUiUrl,
      orders: orders.map((o) => ({ ...o, events: events.filter((e) => e.orderId === o.orderId) })),
      // Events of the correlation id that belong to no known order (e.g. a malformed message).
      otherEvents: events.filter((e) => !orders.some((o) => o.orderId === e.orderId)),
      truncated,
    };
    return c.json(body);
  });

  return app;
}
