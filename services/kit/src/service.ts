import { Hono } from 'hono';
import type { Logger } from 'pino';
import { baseConfig, intSetting } from './config.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { openDb } from './db/open.js';
import type { Db } from './db/db.js';
import { migrate } from './db/migrate.js';
import { NatsManager } from './nats/connection.js';
import { RetryDelays, sleep } from './faults/backoff.js';
import { OutboxRelay } from './outbox/relay.js';
import { OUTBOX_MIGRATIONS } from './outbox/store.js';
import { EventConsumer } from './consumer/runtime.js';
import type { Handlers } from './consumer/contract.js';
import { opsApp, type ReadinessCheck } from './http/ops.js';
import { serveHttp } from './http/serve.js';
import { problem } from './http/problem.js';
import { errorHandler } from './http/errors.js';
import { httpServerSpans } from './http/tracing.js';
import { exitOnSignals, runShutdownHooks } from './shutdown-hooks.js';
import { Names, topologyOf } from './topology.js';
import { type HttpEnv, type ServiceContext, type ServiceDefinition } from './definition.js';
import { applyTopology, problems } from './reconcile/index.js';
import { createAdvisoryCopier, deadLetterLookup, type AdvisoryCopier } from './dlq/advisory-copier.js';

export interface RunningService {
  ctx: ServiceContext;
  port: number;
  url: string;
  consumers: EventConsumer[];
  /** Graceful stop: readiness off, HTTP drained, consumers finished, outbox flushed, NATS drained, DB closed. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  log?: Logger;
  /** Pre-opened database (tests share one PGlite or schema). */
  db?: Db;
  hostname?: string;
  /**
   * Called when the service cannot recover by waiting (a NATS connection closed for good and not
   * rebuilt within NATS_REBUILD_TIMEOUT_MS). runMain exits non-zero; by default it is only logged
   * (tests), and /health keeps answering 503 with the reason.
   */
  onFatal?: (err: Error) => void;
}

/**
 * Default of CONSUMER_LINGER_MS. A message arriving at an idle consumer waits up to this long for
 * company before its transaction, when the recent arrival rate makes company likely (≥ 0.5
 * messages expected within it; a lone message at rest goes at once): at middling load one
 * transaction (its round trips, its WAL flush, its acks and publishes) then serves several.
 * Measured (bench/README.md): 25 ms took CPU per order at 100 orders/s from 16-17 to 12 ms
 * (session 17); 40 ms, once a lone order no longer paid for it, from 10.2-11.0 to 8.3-8.6 ms
 * (session 19), for ≈ 25 ms more p50 at 100/s; p99 at 300/s no worse. 0 turns it off.
 */
const CONSUMER_LINGER_MS = 40;
/** Default of OUTBOX_LINGER_MS: only a relay's claim waits (local commits publish from memory at once). */
const OUTBOX_LINGER_MS = 0;

/** Wires a service from its definition and starts it. Used by each service's main and by tests. */
export async function startService(def: ServiceDefinition, opts: StartOptions = {}): Promise<RunningService> {
  const env = opts.env ?? process.env;
  const config = baseConfig(def.name, def.defaultPort, env);
  const log = opts.log ?? createLogger(def.name, config.logLevel);
  const metrics = createMetrics(def.name);
  const names = new Names(config.namespace);
  // The platform's streams and this service's own consumers: what it ensures at start-up in dev.
  const topology = topologyOf([def], { namespace: config.namespace, replicas: config.streamReplicas });
  const specs = topology.consumers;

  // Probes first: /health answers and /ready names what is missing while the database opens and
  // migrates (a replica waits here while another one migrates) and NATS connects.
  let accepting = true;
  let streamsReady = !config.ensureStreams;
  // Filled in as they come up; the probes read them.
  const up: { db?: Db; nats?: NatsManager } = {};
  let readyDetails: (() => Record<string, unknown>) | undefined;
  const checks: ReadinessCheck[] = [
    { name: 'nats', check: () => (up.nats ? up.nats.isConnected() || (up.nats.closedReason() ?? 'not connected') : 'starting') },
    { name: 'database', check: async () => (up.db ? (await up.db.ping(), true) : 'opening and migrating') },
    { name: 'streams', check: () => streamsReady || 'topology not applied yet' },
  ];
  const ops = opsApp({
    registry: metrics.registry,
    accepting: () => accepting,
    live: () => up.nats?.closedReason() ?? true,
    retryAfterSeconds: config.retryAfterSeconds,
    checks,
    details: () => readyDetails?.() ?? {},
  });
  const probes = new Hono<HttpEnv>();
  probes.use('*', httpServerSpans());
  probes.route('/', ops);
  probes.notFound((c) => {
    c.header('Retry-After', String(config.retryAfterSeconds));
    return problem(c, 503, 'starting: the database is being opened and migrated');
  });
  const http = await serveHttp(probes, { port: config.port, hostname: opts.hostname });

  let db: Db;
  try {
    db =
      opts.db ??
      (await openDb({ url: config.databaseUrl, schema: config.databaseSchema, dataDir: config.dataDir, settings: config.db, log }));
    await migrate(db, [...OUTBOX_MIGRATIONS, ...def.migrations]);
  } catch (err) {
    await http.close({ connections: 'all' });
    throw err;
  }
  up.db = db;
  log.info({ db: db.kind, schema: db.schema }, 'db.ready');

  const nats = new NatsManager(
    {
      ...config.nats,
      name: def.name,
      rebuildTimeoutMs: config.natsRebuildTimeoutMs,
    },
    log,
    metrics,
    (err) => (opts.onFatal ?? ((e: Error) => log.error({ err: e }, 'service.unrecoverable')))(err),
  );
  up.nats = nats;
  const relay = new OutboxRelay({ db, nats, log, metrics, lingerMs: intSetting('OUTBOX_LINGER_MS', OUTBOX_LINGER_MS, env) });
  const ctx: ServiceContext = { config, env, log, metrics, db, nats, names, topology, relay };

  const state = def.setup?.(ctx);
  const handlerMap: Partial<Record<string, Handlers>> = def.handlers?.(ctx, state) ?? {};
  const consumers = specs
    .filter((spec) => handlerMap[spec.durableName])
    // A handler still running after CONSUMER_HANDLER_TIMEOUT_MS is abandoned and rolled back (docs/faults.md).
    .map(
      (spec) =>
        new EventConsumer({
          spec,
          names,
          db,
          nats,
          log,
          metrics,
          relay,
          handlers: handlerMap[spec.durableName]!,
          handlerTimeoutMs: intSetting('CONSUMER_HANDLER_TIMEOUT_MS', 30_000, env),
          lingerMs: intSetting('CONSUMER_LINGER_MS', CONSUMER_LINGER_MS, env),
        }),
    );
  // Cuts the topology retry's wait short at stop().
  const stopped = new AbortController();
  if (config.ensureStreams) {
    // Dev and tests only; in Kubernetes the operator owns the topology (ENSURE_STREAMS=false).
    nats.onConnected(async ({ jsm }) => {
      const delays = new RetryDelays({ initialMs: 500, maxMs: 5000 });
      while (!stopped.signal.aborted) {
        try {
          const failed = problems(await applyTopology(jsm, topology, log));
          if (failed.length) throw new Error(failed.map((r) => `${r.kind} ${r.key}: ${r.error ?? r.reasons.join(', ')}`).join('; '));
          if (stopped.signal.aborted) return;
          streamsReady = true;
          for (const c of consumers) c.start();
          return;
        } catch (err) {
          const retryInMs = delays.next();
          log.warn({ err, attempt: delays.attempts, retryInMs }, 'topology.apply_failed');
          await sleep(retryInMs, stopped.signal);
        }
      }
    });
  }

  const background = def.background?.(ctx, state) ?? [];
  // Messages the server gives up on (ack wait expired maxDeliver times, e.g. a hung handler)
  // never reach our runtime's own DLQ path: the MAX_DELIVERIES advisory copier catches them.
  let copier: AdvisoryCopier | undefined;
  let stopping: Promise<void> | undefined;
  if (consumers.length) {
    // Its subscription lives on one connection: made again on each rebuilt connection.
    nats.onConnection(async ({ nc, js, jsm }) => {
      if (stopping) return;
      const previous = copier;
      copier = createAdvisoryCopier({ nc, js, jsm, log, lookup: deadLetterLookup(specs), queue: `orderflow-dlq-${def.name}` });
      copier.start();
      await previous?.stop();
    });
  }

  checks.push(...(def.readiness?.(ctx, state) ?? []));
  if (def.readyDetails) readyDetails = () => def.readyDetails!(ctx, state);
  const app = new Hono<HttpEnv>();
  // Names the SERVER span `<METHOD> <route>` (or opens it when the http instrumentation is off).
  app.use('*', httpServerSpans());
  app.route('/', ops);
  app.route('/', def.routes(ctx, state));
  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  // The one place a thrown error becomes an answer: 503 + Retry-After for a dependency that is
  // away, 500 only for our own bugs. Routes don't catch infrastructure errors themselves.
  app.onError(errorHandler({ log, retryAfterSeconds: config.retryAfterSeconds }));

  http.use(app);
  const port = http.port;

  nats.start();
  relay.start();
  // With ENSURE_STREAMS the consumers start once their topology exists (see above).
  if (!config.ensureStreams) for (const c of consumers) c.start();
  for (const b of background) await b.start();
  log.info({ port, consumers: consumers.map((c) => c.durable) }, 'service.started');

  const stop = () =>
    (stopping ??= (async () => {
      const t0 = Date.now();
      accepting = false;
      stopped.abort();
      log.info('service.stopping');
      if (config.shutdownDrainDelayMs > 0) await new Promise((r) => setTimeout(r, config.shutdownDrainDelayMs));
      await http.close();
      await Promise.allSettled(background.map((b) => b.stop()));
      await Promise.allSettled(consumers.map((c) => c.stop()));
      await copier?.stop();
      await relay.stop();
      await nats.stop();
      if (!opts.db) await db.close();
      log.info({ ms: Date.now() - t0 }, 'service.stopped');
    })());

  return { ctx, port, url: http.url, consumers, stop };
}

/**
 * Process entry: start, then stop cleanly on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS. After the
 * service has stopped, hooks registered with `onShutdown` (e.g. the OTel span flush) run before exit.
 */
export async function runMain(def: ServiceDefinition): Promise<void> {
  const log = createLogger(def.name);
  let svc: RunningService | undefined;
  let dying = false;
  // Unrecoverable by waiting: stop what can be stopped, then exit non-zero so the pod restarts.
  const onFatal = (err: Error) => {
    if (dying) return;
    dying = true;
    log.fatal({ err }, 'service.unrecoverable_exiting');
    const deadline = setTimeout(() => process.exit(1), svc?.ctx.config.shutdownTimeoutMs ?? 5_000);
    deadline.unref();
    void Promise.resolve(svc?.stop())
      .catch(() => undefined)
      .then(() => runShutdownHooks())
      .finally(() => process.exit(1));
  };
  try {
    svc = await startService(def, { log, onFatal });
  } catch (err) {
    log.fatal({ err }, 'service.start_failed');
    process.exit(1);
  }
  const running = svc;
  exitOnSignals(() => running.stop(), { log, timeoutMs: running.ctx.config.shutdownTimeoutMs });
}
