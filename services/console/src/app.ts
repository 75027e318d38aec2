/**
 * The console's HTTP app: the page, its script, and a JSON API over public platform APIs only
 * (JetStream info and messages, the services' HTTP endpoints, the DLQ through the kit's replay
 * module). Every /api/* route sits behind the optional bearer token; every error is answered by
 * the kit's one error handler (problem+json; 503 with Retry-After while something is away).
 */
import { Hono, type Context } from 'hono';
import { errorHandler, opsApp, problem } from '@orderflow/kit';
import type { Registry } from 'prom-client';
import { pageRoutes, type ClientAssets } from './http/assets.js';
import { bearerAuth } from './http/bearer-auth.js';
import { deadLetterRoutes } from './http/dead-letters.js';
import { orderLookupRoutes } from './http/order-lookup.js';
import { overviewRoutes } from './http/overview.js';
import type { ConsoleState, RouteDeps } from './http/routes.js';

export type { ConsoleState };

export interface ConsoleDeps extends RouteDeps {
  registry: Registry;
  /** A compiled browser module (dist/web/client/<path>); undefined when it is not there. */
  clientAsset: ClientAssets;
  /** False once shutdown begins (/ready answers 503). */
  accepting?: () => boolean;
}

export function createConsoleApp(deps: ConsoleDeps): Hono {
  const { config, log, nats } = deps;
  const app = new Hono();
  const noRoute = (c: Context) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`);

  app.route(
    '/',
    opsApp({
      registry: deps.registry,
      accepting: deps.accepting ?? (() => true),
      checks: [{ name: 'nats', check: () => nats.isConnected() || 'not connected' }],
      retryAfterSeconds: config.retryAfterSeconds,
    }),
  );
  app.route('/', pageRoutes({ namespace: config.namespace, tokenRequired: Boolean(config.token), clientAsset: deps.clientAsset }));

  const api = new Hono();
  api.use('*', bearerAuth(config.token));
  for (const routes of [overviewRoutes, deadLetterRoutes, orderLookupRoutes]) api.route('/', routes(deps));
  // Inside /api so an unknown API path still asks for the token first.
  api.notFound(noRoute);
  app.route('/api', api);

  app.notFound(noRoute);
  app.onError(errorHandler({ log, retryAfterSeconds: config.retryAfterSeconds }));
  return app;
}
