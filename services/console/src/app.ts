/**
 * The console's HTTP app: the page, its script, and a JSON API over public platform APIs only
 * (JetStream info and messages, the services' HTTP endpoints, the DLQ through the kit's replay
 * module). Every /api/* route sits behind the optional bearer token.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Logger } from 'pino';
import { opsApp, problem, type Names, type NatsManager, type Topology } from '@orderflow/kit';
import type { Registry } from 'prom-client';
import type { ConsoleConfig } from './config.js';
import { DeadLetters, type Actor } from './dlq.js';
import type { JetStreamSampler } from './sources/jetstream.js';
import type { SagaFigures, ServicesClient } from './sources/services.js';
import { orderTimeline } from './sources/timeline.js';
import type { DlqResponse, Lookup, Overview, StreamsResponse } from './web/api-types.js';
import { PAGE } from './web/page.js';

export interface ConsoleState {
  jetstream: JetStreamSampler;
  /** Latest saga figures scraped from order-service (undefined until the first scrape). */
  saga(): { figures?: SagaFigures; error?: string };
}

export interface ConsoleDeps {
  config: ConsoleConfig;
  log: Logger;
  nats: NatsManager;
  names: Names;
  topology: Topology;
  services: ServicesClient;
  state: ConsoleState;
  registry: Registry;
  /** The compiled browser script (dist/web/app.js); undefined when it has not been built. */
  clientScript(): Promise<string | undefined>;
  /** False once shutdown begins (/ready answers 503). */
  accepting?: () => boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATS_MINUTES = 15;

/** Constant-time comparison of the presented token (hashed first so lengths never leak). */
function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function bearerAuth(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (!token) return next();
    const m = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
    if (!m || !tokenMatches(m[1]!.trim(), token)) {
      c.header('WWW-Authenticate', 'Bearer realm="orderflow-console"');
      return problem(c, 401, m ? 'the console token is not valid' : 'this console requires a bearer token (Authorization: Bearer <CONSOLE_TOKEN>)');
    }
    return next();
  };
}

function actorOf(c: Context, token: string | undefined): Actor {
  let ip = c.req.header('x-forwarded-for')?.split(',')[0]?.trim();
  if (!ip) {
    try {
      ip = getConnInfo(c).remote.address;
    } catch {
      ip = undefined;
    }
  }
  return { auth: token ? 'token' : 'anonymous', ip, userAgent: c.req.header('user-agent') };
}

const seqParam = (c: Context): number | undefined => {
  const n = Number(c.req.param('seq'));
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
};

export function createConsoleApp(deps: ConsoleDeps): Hono {
  const { config, log, nats, names, topology, services, state } = deps;
  const dlqStream = names.stream('DLQ');
  const app = new Hono();

  app.route(
    '/',
    opsApp({
      registry: deps.registry,
      accepting: deps.accepting ?? (() => true),
      checks: [{ name: 'nats', check: () => nats.isConnected() || 'not connected' }],
    }),
  );

  const html = PAGE({ namespace: config.namespace, tokenRequired: Boolean(config.token) });
  app.get('/', (c) => {
    c.header('Cache-Control', 'no-store');
    c.header('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'");
    return c.html(html);
  });
  app.get('/assets/app.js', async (c) => {
    const js = await deps.clientScript();
    if (!js) return problem(c, 503, 'the console client is not built: run npm run build -w services/console');
    return c.body(js, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
  });

  const api = new Hono();
  api.use('*', bearerAuth(config.token));

  const connected = async () => {
    const conn = nats.current;
    if (!conn || !nats.isConnected()) throw Object.assign(new Error('not connected to NATS'), { status: 503 });
    return conn;
  };

  api.get('/overview', async (c) => {
    const errors: string[] = [];
    const [stats, readiness] = await Promise.all([
      services.stats(STATS_MINUTES).catch((err: Error) => (errors.push(`order stats: ${err.message}`), undefined)),
      services.readiness(),
    ]);
    const saga = state.saga();
    if (saga.error) errors.push(`order-service metrics: ${saga.error}`);
    const snap = state.jetstream.snapshot;
    const dlq = snap.streams.find((s) => s.name === dlqStream);
    const body: Overview = {
      generatedAt: new Date().toISOString(),
      namespace: config.namespace,
      orders: stats,
      saga: saga.figures,
      services: readiness,
      nats: { connected: nats.isConnected(), servers: config.nats.servers },
      deadLetters: dlq?.messages ?? 0,
      growingConsumers: snap.streams.flatMap((s) => s.consumers.filter((x) => x.growing).map((x) => `${s.name}/${x.name}`)),
      errors,
    };
    return c.json(body);
  });

  api.get('/streams', (c) => {
    const body: StreamsResponse = { ...state.jetstream.snapshot, connected: nats.isConnected() };
    return c.json(body);
  });

  const dlq = async () => {
    const conn = await connected();
    return new DeadLetters(conn.jsm, conn.js, topology, dlqStream, log);
  };

  api.get('/dlq', async (c) => {
    const body: DlqResponse = { stream: dlqStream, ...(await (await dlq()).groups()) };
    return c.json(body);
  });

  api.get('/dlq/:seq', async (c) => {
    const seq = seqParam(c);
    if (!seq) return problem(c, 400, 'sequence must be a positive integer');
    const e = await (await dlq()).show(seq);
    return e ? c.json(e) : problem(c, 404, `no dead letter ${seq} in ${dlqStream}`);
  });

  api.post('/dlq/replay-all', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { subject?: unknown };
    const subject = typeof body.subject === 'string' && body.subject ? body.subject : undefined;
    const results = await (await dlq()).replayAll(actorOf(c, config.token), subject);
    return c.json({ results, replayed: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length });
  });

  api.post('/dlq/:seq/replay', async (c) => {
    const seq = seqParam(c);
    if (!seq) return problem(c, 400, 'sequence must be a positive integer');
    const r = await (await dlq()).replay(seq, actorOf(c, config.token));
    if (r.ok) return c.json(r);
    return r.entry ? problem(c, 502, r.error ?? 'replay failed', { result: r }) : problem(c, 404, r.error ?? `no dead letter ${seq}`);
  });

  api.post('/dlq/:seq/discard', async (c) => {
    const seq = seqParam(c);
    if (!seq) return problem(c, 400, 'sequence must be a positive integer');
    // The page asks for confirmation; the API insists on it too, so a stray POST discards nothing.
    const body = (await c.req.json().catch(() => ({}))) as { confirm?: unknown };
    if (body.confirm !== true) return problem(c, 400, 'discarding is final: send {"confirm": true}');
    const ok = await (await dlq()).discard(seq, actorOf(c, config.token));
    return ok ? c.json({ seq, discarded: true }) : problem(c, 404, `no dead letter ${seq} in ${dlqStream}`);
  });

  api.get('/orders/lookup', async (c) => {
    const q = (c.req.query('q') ?? '').trim();
    if (!q || q.length > 255) return problem(c, 400, 'give an order id or a correlation id in ?q=');
    let orders = UUID.test(q) ? [await services.order(q)].filter((o) => o !== undefined) : [];
    const byCorrelation = orders.length === 0;
    if (byCorrelation) orders = await services.ordersByCorrelation(q);
    const conn = await connected();
    const created = orders.map((o) => Date.parse(o.createdAt ?? '')).filter(Number.isFinite);
    // From a little before the first order (clock skew between hosts), or the last hour.
    const since = new Date((created.length ? Math.min(...created) : Date.now() - 3_600_000) - 60_000);
    const { events, truncated } = await orderTimeline(
      { js: conn.js, names, streams: topology.streams.map((s) => s.name), dlqStream, jaegerUiUrl: config.jaegerUiUrl },
      { orderIds: new Set(orders.length ? orders.map((o) => o.orderId) : UUID.test(q) ? [q] : []), correlationId: byCorrelation ? q : undefined, since },
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

  api.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  app.route('/api', api);

  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    // Not connected, or the platform's streams are not there (yet): the upstream is unavailable.
    const status = (err as { status?: number }).status === 503 || /stream not found/i.test(err.message) ? 503 : 500;
    log.error({ err, method: c.req.method, path: c.req.path }, 'http.unhandled_error');
    return problem(c, status, status === 503 ? err.message : `internal error: ${err.message}`);
  });
  return app;
}
