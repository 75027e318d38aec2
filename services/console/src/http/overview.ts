/** GET /api/overview and /api/streams: figures the samplers keep, and the services' readiness. */
import { Hono } from 'hono';
import type { Overview, StreamsResponse } from '../web/api-types.js';
import type { RouteDeps } from './routes.js';

const STATS_MINUTES = 15;

export function overviewRoutes({ config, nats, names, services, state }: RouteDeps): Hono {
  const dlqStream = names.stream('DLQ');
  const app = new Hono();

  // Never fails as a whole: what could not be read is listed in `errors` next to what could.
  app.get('/overview', async (c) => {
    const errors: string[] = [];
    const [stats, readiness] = await Promise.all([
      services.stats(STATS_MINUTES).catch((err: Error) => (errors.push(`order stats: ${err.message}`), undefined)),
      services.readiness(),
    ]);
    const saga = state.saga();
    if (saga.error) errors.push(`order-service metrics: ${saga.error}`);
    const snap = state.jetstream.snapshot;
    const growing = snap.streams.flatMap((s) => s.consumers.filter((x) => x.growing).map((x) => `${s.name}/${x.name}`));
    const body: Overview = {
      generatedAt: new Date().toISOString(),
      namespace: config.namespace,
      orders: stats,
      saga: saga.figures,
      services: readiness,
      nats: { connected: nats.isConnected(), servers: config.nats.servers },
      deadLetters: snap.streams.find((s) => s.name === dlqStream)?.messages ?? 0,
      growingConsumers: growing,
      errors,
    };
    return c.json(body);
  });

  app.get('/streams', (c) => {
    const body: StreamsResponse = { ...state.jetstream.snapshot, connected: nats.isConnected() };
    return c.json(body);
  });

  return app;
}
