/**
 * Chaos scenarios on a real 3-node NATS JetStream cluster (R3 streams) with every service as a
 * child process: a load generator places orders at a steady rate, a fault is injected mid-load,
 * then the run waits for quiescence and the invariant checker reads Postgres, the gateway and the
 * streams. Used by `npm run chaos` (full profile, test/chaos/run.ts) and by the CI profile
 * (test/chaos/chaos.test.ts).
 *
 * The harness behaves like a kubelet: a service process that exits without the scenario killing
 * it is started again (with backoff) and reported as a crash; a crash the scenario does not
 * expect fails it. Everything it starts — service processes, NATS nodes, a private Postgres — is
 * killed when the scenario ends, fails, or runs past its deadline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { applyTopology, createLogger, problems } from '@orderflow/kit';
import { TestPostgresServer, waitFor } from '@orderflow/kit/testing';
import { Platform, type CrashRecord } from '../support/platform.js';
import { TestNatsCluster } from '../support/cluster.js';
import { track } from '../support/reaper.js';
import { platformTopology, type ServiceName } from '../support/topology.js';
import { checkInvariants, waitQuiescent, type InvariantInput } from '../support/invariants.js';
import { ClusterAuth } from './cluster-auth.js';
import { LoadGenerator } from './load.js';
import { failureCounts, type ScenarioResult } from './report.js';

export { formatTable, type ScenarioResult } from './report.js';

export interface Profile {
  orders: number;
  /** Orders per second offered by the load generator. */
  rate: number;
  /** How long a paused NATS node stays stopped (must exceed the consumers' ack wait). */
  pauseMs: number;
  quiescenceTimeoutMs: number;
  /**
   * How long the private Postgres stays down: longer than every retry budget (the consumer's
   * redelivery backoff 1+5+15+30 s spends its five deliveries in ~51 s).
   */
  pgOutageMs: number;
  /** How long the services' NATS passwords stay changed. */
  credsOutageMs: number;
  /** How long the gateway answers (and captures) only after the payment service gave up. */
  slowGatewayMs: number;
}

export const FULL_PROFILE: Profile = {
  orders: 2000,
  rate: 100,
  pauseMs: 35_000,
  quiescenceTimeoutMs: 240_000,
  pgOutageMs: 90_000,
  credsOutageMs: 20_000,
  slowGatewayMs: 15_000,
};

export function ciProfile(env: Record<string, string | undefined> = process.env): Profile {
  return {
    orders: Number(env.CHAOS_ORDERS ?? 200),
    rate: 50,
    pauseMs: 8_000,
    quiescenceTimeoutMs: 120_000,
    pgOutageMs: Number(env.CHAOS_PG_OUTAGE_MS ?? 55_000),
    credsOutageMs: 8_000,
    slowGatewayMs: 8_000,
  };
}

export interface FaultContext {
  p: Platform;
  cluster: TestNatsCluster;
  profile: Profile;
  /**
   * The scenario's own Postgres servers (with `needs.privatePostgres`): one holds order-service's
   * schema, the other inventory's and payment's, so each side can be away on its own.
   */
  db?: { orders: TestPostgresServer; saga: TestPostgresServer };
  /** The cluster's per-service users (scenarios with `needs.natsAuth`). */
  auth?: ClusterAuth;
  /** Resolves once the load generator has sent this many orders. */
  sent(n: number): Promise<void>;
  /** Orders accepted (202) so far. */
  accepted(): number;
  /** Aborted when the scenario is torn down early (its deadline passed). */
  signal: AbortSignal;
  log(msg: string): void;
}

export interface Scenario {
  name: string;
  /** What is injected, for the table. */
  fault: string;
  needs?: { privatePostgres?: boolean; natsAuth?: boolean };
  /** How long one client keeps retrying an order (default 60 s). */
  clientGiveUpMs?(profile: Profile): number;
  /** An exit that is the designed answer to this fault: counted as a restart, not a crash. */
  expectedExit?(c: CrashRecord): boolean;
  /** Runs alongside the load; resolves when the fault is over. Throws if it never took effect. */
  inject(ctx: FaultContext): Promise<void>;
}

/** A pause inside a fault; a scenario that is torn down (deadline) ends its fault at once. */
const sleep = (ms: number, signal?: AbortSignal) => delay(ms, undefined, { signal });

function killAndRestart(service: ServiceName, downMs = 2000): Scenario {
  return {
    name: `kill -9 ${service}`,
    fault: `SIGKILL at 30% of the load, restarted ${downMs / 1000}s later`,
    async inject({ p, profile, sent, log, signal }) {
      await sent(Math.floor(profile.orders * 0.3));
      await p.kill(service);
      log(`killed ${service}`);
      await sleep(downMs, signal);
      await p.startInstance(service, service, true);
      log(`${service} back`);
    },
  };
}

/** Drops every Postgres connection the services hold (not other tests' on a shared server). */
async function terminateBackends(p: Platform): Promise<number> {
  const c = new pg.Client({ connectionString: p.databaseUrl, application_name: 'chaos' });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE application_name = ANY($1::text[]) AND pid <> pg_backend_pid()`,
      [Object.values(p.schemas)],
    );
    return r.rows[0]!.n;
  } finally {
    await c.end();
  }
}

async function gatewayConfig(p: Platform, cfg: { failureRate?: number; latencyMs?: number }): Promise<void> {
  const r = await fetch(`${p.gateway.url}/admin/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(cfg),
  });
  if (!r.ok) throw new Error(`gateway config: ${r.status}`);
}

/** Charge attempts payment-service saw time out (its Prometheus counter). */
async function paymentTimeouts(p: Platform): Promise<number> {
  const text = await (await fetch(`${p.url('payment-service')}/metrics`)).text();
  const m = /^orderflow_payment_gateway_attempts_total\{[^}]*outcome="timeout"[^}]*\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

// The payment service's charge attempts time out after GATEWAY_TIMEOUT_MS (2 s) and it retries
// three times with backoff (≤ 2 s each): a gateway this slow answers after it has given up on
// every attempt — and captures anyway.
const GATEWAY_LATE_MS = 15_000;
/** The gateway's request deadline in chaos runs (gateway and payment-service): above GATEWAY_LATE_MS. */
const GATEWAY_MAX_PROCESSING_MS = 30_000;

export const SCENARIOS: Record<string, Scenario> = {
  'kill-order': killAndRestart('order-service'),
  'kill-inventory': killAndRestart('inventory-service'),
  'kill-payment': killAndRestart('payment-service'),
  'kill-stream-leader': {
    name: 'kill -9 NATS stream leader',
    fault: 'SIGKILL the ORDERS leader node at 30%, restarted 5s later',
    async inject({ p, cluster, profile, sent, log, signal }) {
      await sent(Math.floor(profile.orders * 0.3));
      const leader = await cluster.streamLeader(`${p.ns.toUpperCase()}_ORDERS`);
      await cluster.kill(leader.index);
      log(`killed ${leader.name} (ORDERS leader)`);
      await sleep(5000, signal);
      await cluster.restart(leader.index);
      log(`${leader.name} back`);
    },
  },
  'restart-nats-cluster': {
    name: 'restart whole NATS cluster',
    fault: 'all 3 nodes SIGTERM at 30%, down 2s, restarted',
    async inject({ cluster, profile, sent, log }) {
      await sent(Math.floor(profile.orders * 0.3));
      log('stopping all NATS nodes');
      await cluster.restartAll('SIGTERM', 2000);
      log('NATS cluster healthy again');
    },
  },
  'postgres-terminate': {
    name: 'Postgres connections killed',
    fault: 'pg_terminate_backend on every service connection at 30% and 60%',
    async inject({ p, profile, sent, log }) {
      await sent(Math.floor(profile.orders * 0.3));
      const first = await terminateBackends(p);
      log(`terminated ${first} backends`);
      await sent(Math.floor(profile.orders * 0.6));
      const second = await terminateBackends(p);
      log(`terminated ${second} backends`);
      if (first + second === 0) throw new Error('no service connection was terminated: the fault did not happen');
    },
  },
  'postgres-down': {
    name: 'Postgres down past every retry budget',
    fault:
      'at 30% both private Postgres servers stop (fast: 57P01 to every session); order-service’s comes back ' +
      'after min(15 s, pgOutageMs/3) (orders flow in again), inventory’s and payment’s after pgOutageMs',
    needs: { privatePostgres: true },
    // A patient client: it keeps coming back (503 + Retry-After) until the database is back.
    clientGiveUpMs: (profile) => profile.pgOutageMs + 60_000,
    async inject({ db, profile, sent, accepted, log, signal }) {
      await sent(Math.floor(profile.orders * 0.3));
      await Promise.all([db!.orders.stop('fast'), db!.saga.stop('fast')]);
      const t0 = Date.now();
      const ordersDownMs = Math.min(15_000, Math.round(profile.pgOutageMs / 3));
      log(`postgres stopped: order-service's for ${ordersDownMs / 1000} s, inventory's and payment's for ${profile.pgOutageMs / 1000} s`);
      await sleep(ordersDownMs, signal);
      await db!.orders.start();
      const before = accepted();
      // The point of the split: events pile up for consumers whose database is away.
      await waitFor('orders accepted while inventory and payment have no database', () => accepted() > before, 30_000, 100);
      log(`order-service's database back; orders flow in again while inventory's and payment's stays down`);
      await sleep(Math.max(0, profile.pgOutageMs - (Date.now() - t0)), signal);
      await db!.saga.start();
      log(`inventory's and payment's database back (${accepted() - before} orders were accepted while it was away)`);
    },
  },
  'nats-credentials': {
    name: 'NATS credentials changed and back',
    fault: 'every service user’s password changed (config reload) at 30%, restored credsOutageMs later',
    needs: { natsAuth: true },
    // "Credentials rejected for good" may be answered by exiting non-zero, saying why (the pod restarts).
    expectedExit: (c) => c.deliberate,
    async inject({ cluster, auth, profile, sent, log, signal }) {
      await sent(Math.floor(profile.orders * 0.3));
      auth!.rotateServices(cluster);
      // The fault is real only once the servers have dropped the services' connections.
      await waitFor(
        'service connections dropped after the reload',
        async () => (await ClusterAuth.serviceConnections(cluster)) === 0,
        20_000,
        100,
      );
      log(`service passwords changed, their connections dropped; restoring in ${profile.credsOutageMs / 1000} s`);
      await sleep(profile.credsOutageMs, signal);
      auth!.restore(cluster);
      log('service passwords restored');
    },
  },
  'gateway-late-capture': {
    name: 'gateway captures after the client gave up',
    fault: `gateway answers (and captures) ${GATEWAY_LATE_MS / 1000}s late from 30% for slowGatewayMs; lookups as slow`,
    async inject({ p, profile, sent, log, signal }) {
      await sent(Math.floor(profile.orders * 0.3));
      const before = await paymentTimeouts(p);
      await gatewayConfig(p, { latencyMs: GATEWAY_LATE_MS });
      log(`gateway slow (${GATEWAY_LATE_MS} ms) for ${profile.slowGatewayMs / 1000} s`);
      await sleep(profile.slowGatewayMs, signal);
      await gatewayConfig(p, { latencyMs: 0 });
      // Requests already waiting still capture when their latency is over.
      await waitFor(
        'a charge attempt timed out at payment-service',
        async () => (await paymentTimeouts(p)) > before,
        GATEWAY_LATE_MS + 10_000,
        250,
      );
      log(`gateway fast again; ${(await paymentTimeouts(p)) - before} charge attempts had timed out`);
    },
  },
  'pause-nats-node': {
    name: 'pause NATS node > ack wait',
    fault: 'SIGSTOP the ORDERS leader at 30% for pauseMs, then SIGCONT',
    async inject({ p, cluster, profile, sent, log, signal }) {
      await sent(Math.floor(profile.orders * 0.3));
      const leader = await cluster.streamLeader(`${p.ns.toUpperCase()}_ORDERS`);
      cluster.pause(leader.index);
      log(`paused ${leader.name} for ${profile.pauseMs} ms`);
      await sleep(profile.pauseMs, signal);
      cluster.resume(leader.index);
      log(`resumed ${leader.name}`);
    },
  },
  'gateway-flapping': {
    name: 'gateway flapping',
    fault: 'failureRate toggles 0.6 ↔ 0 every second (latency 0–50 ms) for the whole load',
    async inject({ p, profile, sent, log, signal }) {
      let done = false;
      const finished = sent(profile.orders).then(() => (done = true));
      let on = false;
      while (!done) {
        on = !on;
        await gatewayConfig(p, on ? { failureRate: 0.6, latencyMs: 50 } : { failureRate: 0, latencyMs: 0 });
        await Promise.race([sleep(1000, signal), finished]);
      }
      await gatewayConfig(p, { failureRate: 0, latencyMs: 0 });
      log('gateway healthy again');
    },
  },
};

const PRODUCTS = 10;
/** Every 25th order is over the gateway's decline limit: payments.failed → release → cancelled. */
const EXPENSIVE = 'chaos-expensive';

export interface RunOptions {
  /**
   * Give up, kill everything and fail after this long (a guard below the test's own timeout:
   * vitest abandons a timed-out test body but does not stop it).
   */
  deadlineMs?: number;
}

export async function runScenario(
  key: string,
  profile: Profile,
  log: (msg: string) => void = () => undefined,
  o: RunOptions = {},
): Promise<ScenarioResult> {
  const scenario = SCENARIOS[key];
  if (!scenario) throw new Error(`unknown scenario ${key}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const run = new ScenarioRun(scenario, profile, log);
  const body = run.execute();
  if (!o.deadlineMs) return body;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario ${key} passed its ${o.deadlineMs} ms deadline while ${run.phase}`)), o.deadlineMs);
  });
  try {
    return await Promise.race([body, deadline]);
  } catch (err) {
    // The body may still be waiting on something: take its world away, it then ends on its own.
    body.catch(() => undefined);
    await run.dispose();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** One scenario's world (cluster, maybe a private Postgres, the platform, the load) and its run. */
class ScenarioRun {
  phase = 'starting';
  #cluster: TestNatsCluster | undefined;
  #db: { orders: TestPostgresServer; saga: TestPostgresServer } | undefined;
  #untrackDb: Array<() => void> = [];
  #p: Platform | undefined;
  #load: LoadGenerator | undefined;
  #dir: string | undefined;
  #disposing: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(
    readonly scenario: Scenario,
    readonly profile: Profile,
    readonly log: (msg: string) => void,
  ) {}

  async execute(): Promise<ScenarioResult> {
    try {
      return await this.#execute();
    } finally {
      await this.dispose();
    }
  }

  /** Stops the load, kills every process this run started, removes its files. Idempotent. */
  dispose(): Promise<void> {
    return (this.#disposing ??= (async () => {
      this.#abort.abort(new Error(`scenario torn down while ${this.phase}`));
      this.#load?.stop();
      await this.#p?.stop().catch(() => undefined);
      await this.#cluster?.dispose().catch(() => undefined);
      for (const server of Object.values(this.#db ?? {})) await server.cleanup().catch(() => undefined);
      if (this.#dir) rmSync(this.#dir, { recursive: true, force: true });
      for (const untrack of this.#untrackDb) untrack();
    })());
  }

  async #execute(): Promise<ScenarioResult> {
    const { scenario, profile, log } = this;
    const needs = scenario.needs ?? {};
    this.#dir = mkdtempSync(join(tmpdir(), 'orderflow-chaos-'));
    const confPath = join(this.#dir, 'nats-auth.conf');
    if (needs.privatePostgres) {
      this.phase = 'starting its own Postgres servers';
      const start = async (label: string) => {
        const server = await TestPostgresServer.create({ database: 'chaos' });
        // The kit's own hook covers a normal exit; a signal needs the reaper's synchronous kill.
        this.#untrackDb.push(
          track({
            name: `postgres (${label}) ${server.dir}`,
            dispose: () => server.cleanup(),
            kill: () => {
              const pid = server.pid;
              if (pid) process.kill(pid, 'SIGQUIT'); // immediate shutdown of postmaster and backends
            },
          }),
        );
        return server;
      };
      this.#db = { orders: await start('orders'), saga: await start('inventory, payment') };
      await Promise.all([this.#db.orders.start(), this.#db.saga.start()]);
    }
    this.phase = 'starting the NATS cluster';
    const cluster = await TestNatsCluster.create(needs.natsAuth ? { include: confPath } : {});
    this.#cluster = cluster;
    let auth: ClusterAuth | undefined;
    const platformOpts = {
      childProcesses: ['order-service', 'inventory-service', 'payment-service'] as ServiceName[],
      natsUrl: cluster.urls,
      natsConnect: () => cluster.connect(),
      databaseUrl: this.#db?.saga.url,
      databaseUrls: this.#db ? { 'order-service': this.#db.orders.url } : undefined,
      supervise: true,
      gatewayEnv: { SANDBOX_MAX_PROCESSING_MS: String(GATEWAY_MAX_PROCESSING_MS) },
      // CHAOS_LOG_LEVEL=info keeps every service's story of each order for a post-mortem.
      logLevel: process.env.CHAOS_LOG_LEVEL,
      env: {
        STREAM_REPLICAS: '3',
        // A long saga timeout: a lost event must show as an open order, not hide behind a timeout cancel.
        SAGA_TIMEOUT_MS: '900000',
        SHUTDOWN_TIMEOUT_MS: '10000',
        // Charges in doubt are re-checked on the production curve, only compressed (2 s doubling
        // to 15 s instead of 10 s to 1 h), so a late capture is found within the quiescence window.
        PAYMENT_IN_DOUBT_CHECK_INITIAL_MS: '2000',
        PAYMENT_IN_DOUBT_CHECK_MAX_MS: '15000',
        // The gateway's request deadline, the same on both sides and above the 15 s late capture:
        // a charge that never reached the gateway settles as never_captured within quiescence.
        PAYMENT_GATEWAY_MAX_PROCESSING_MS: String(GATEWAY_MAX_PROCESSING_MS),
        ...(needs.natsAuth ? { ENSURE_STREAMS: 'false' } : {}),
      },
    };
    const p = new Platform(platformOpts);
    this.#p = p;
    if (needs.natsAuth) {
      auth = new ClusterAuth(confPath, p.ns);
      cluster.clientAuth = auth.admin;
      p.opts.serviceEnv = auth.serviceEnv();
    }
    await cluster.start();
    if (auth) {
      // The operator's job where services may not manage streams: the admin user applies the topology.
      const nc = await cluster.connect();
      try {
        const failed = problems(
          await applyTopology(
            await jetstreamManager(nc),
            platformTopology({ namespace: p.ns, replicas: 3 }),
            createLogger('chaos', 'error'),
          ),
        );
        if (failed.length) throw new Error(`topology: ${JSON.stringify(failed)}`);
      } finally {
        await nc.close();
      }
    }
    this.phase = 'starting the services';
    await p.start();
    // ~10% of the cheap orders find no stock (out_of_stock), so both saga branches run.
    const perProduct = Math.floor((profile.orders * 0.9) / PRODUCTS);
    const initialStock: Record<string, number> = {};
    for (let i = 0; i < PRODUCTS; i++) initialStock[`chaos-${i}`] = perProduct;
    initialStock[EXPENSIVE] = profile.orders;
    for (const [id, n] of Object.entries(initialStock)) await p.setStock(id, n, id === EXPENSIVE ? 20_000 : 2);

    // Deliberate poison, published before the load: the DLQ must end up with exactly these.
    const poison = await publishPoison(p, cluster, 3);

    const load = new LoadGenerator(
      { orderUrl: () => p.url('order-service', p.anyInstance('order-service')) },
      {
        orders: profile.orders,
        rate: profile.rate,
        giveUpMs: scenario.clientGiveUpMs?.(profile) ?? 60_000,
        productFor: (i) => (i % 25 === 24 ? EXPENSIVE : `chaos-${i % PRODUCTS}`),
      },
    );
    this.#load = load;
    this.phase = 'under load with the fault';
    const started = Date.now();
    let faultError: string | undefined;
    const faultDone = scenario
      .inject({
        p,
        cluster,
        profile,
        db: this.#db,
        auth,
        signal: this.#abort.signal,
        sent: (n) => load.waitSent(n),
        accepted: () => load.accepted.size,
        log: (m) => log(`  [${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`),
      })
      .catch((err: Error) => void (faultError = `fault injection failed: ${err.message}`));
    await load.run();
    const loadSeconds = (Date.now() - started) / 1000;
    await faultDone;
    this.#abort.signal.throwIfAborted();
    log(
      `  load done in ${loadSeconds.toFixed(1)}s: sent ${load.sent}, accepted ${load.accepted.size}, retries ` +
        `${load.retries}, 503 ${load.unavailable}, bad 5xx ${load.bad5xx.length}`,
    );

    const input: InvariantInput = {
      databaseUrl: p.databaseUrl,
      databaseUrls: {
        order: p.databaseUrlOf('order-service'),
        inventory: p.databaseUrlOf('inventory-service'),
        payment: p.databaseUrlOf('payment-service'),
      },
      schemas: { order: p.schemas['order-service'], inventory: p.schemas['inventory-service'], payment: p.schemas['payment-service'] },
      gatewayUrl: p.gateway.url,
      nats: { servers: cluster.urls.split(','), ...(auth ? { user: auth.admin.user, pass: auth.admin.pass } : {}) },
      namespace: p.ns,
      accepted: [...load.accepted],
      initialStock,
      expectedPoison: poison,
    };
    this.phase = 'waiting for quiescence';
    const q0 = Date.now();
    const errors: string[] = faultError ? [faultError] : [];
    const aborted = new Promise<never>((_, reject) =>
      this.#abort.signal.addEventListener('abort', () => reject(this.#abort.signal.reason as Error), { once: true }),
    );
    await Promise.race([waitQuiescent(input, profile.quiescenceTimeoutMs, (m) => log(`  ${m}`)), aborted]).catch((err: Error) =>
      errors.push(err.message),
    );
    this.#abort.signal.throwIfAborted();
    const quiescenceSeconds = (Date.now() - q0) / 1000;
    this.phase = 'checking invariants';
    const report = await checkInvariants(input);
    if (report.orders.inDb !== load.accepted.size)
      errors.push(`${report.orders.inDb} orders in the database for ${load.accepted.size} accepted`);
    if (load.sent !== load.accepted.size) errors.push(`${load.sent - load.accepted.size} orders never accepted: ${load.lastError}`);
    const crashes = [...p.crashes];
    const unexpected = crashes.filter((c) => !scenario.expectedExit?.(c));
    for (const c of unexpected)
      errors.push(
        `${c.id} (pid ${c.pid}) exited unexpectedly: code ${c.code}, signal ${c.signal} after ${(c.uptimeMs / 1000).toFixed(1)} s`,
      );
    if (load.bad5xx.length) errors.push(`${load.bad5xx.length} bad 5xx answers, e.g. ${JSON.stringify(load.bad5xx[0])}`);
    const r: ScenarioResult = {
      scenario: scenario.name,
      fault: scenario.fault,
      sent: load.sent,
      accepted: load.accepted.size,
      final: report.orders.final,
      confirmed: report.orders.confirmed,
      cancelled: report.orders.cancelled,
      lost: report.lost,
      doubleEffects: report.doubleEffects,
      stockDrift: report.stockDrift,
      dlqUnexpected: (report.dlq?.unexpected ?? 0) + (report.dlq?.missing ?? 0),
      unexpectedCrashes: unexpected.length,
      restarts: crashes.length,
      bad5xx: load.bad5xx.length,
      unavailable503: load.unavailable,
      loadSeconds,
      quiescenceSeconds,
      clientRetries: load.retries,
      report,
      crashes,
      bad5xxSamples: load.bad5xx.slice(0, 5),
      ok: false,
      error: undefined,
    };
    r.ok = report.ok && errors.length === 0 && Object.values(failureCounts(r)).every((n) => n === 0);
    if (!r.ok) r.error = [...errors, ...(report.ok ? [] : [`${report.violations.length} invariant violations`])].join('; ') || 'failed';
    if (!r.ok) {
      log(`  violations: ${JSON.stringify(report.violations.slice(0, 10))}`);
      for (const c of unexpected) log(`  --- ${c.id} (pid ${c.pid}) last words ---\n${c.tail.slice(-3000)}`);
      // What the services and the gateway said about the first few orders in trouble.
      const charges = (
        (await (await fetch(`${p.gateway.url}/charges`)).json().catch(() => ({ charges: [] }))) as { charges: Array<{ orderId: string }> }
      ).charges;
      for (const orderId of [...new Set(report.violations.map((v) => v.orderId).filter(Boolean))].slice(0, 3) as string[]) {
        const said = [...p.instances.keys()].flatMap((id) =>
          p
            .output(id, 1_000_000)
            .split('\n')
            .filter((l) => l.includes(orderId))
            .map((l) => `${id}: ${l}`),
        );
        log(
          `  --- order ${orderId}: gateway charges ` +
            `${JSON.stringify(charges.filter((c) => c.orderId === orderId))} ` +
            `---\n${said.slice(-20).join('\n')}`,
        );
      }
      for (const id of p.instances.keys()) log(`  --- ${id} output tail ---\n${p.output(id, 3000)}`);
    }
    return r;
  }
}

async function publishPoison(p: Platform, cluster: TestNatsCluster, n: number): Promise<string[]> {
  const nc = await cluster.connect();
  try {
    const js = jetstream(nc);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `poison-${p.ns}-${i}`;
      const h = natsHeaders();
      h.set('Event-Type', 'orders.created');
      h.set('Event-Version', 'v1');
      await js.publish(
        `${p.ns}.orders.created`,
        new TextEncoder().encode(i % 2 ? '{"orderId": 42' : JSON.stringify({ version: 'v1', orderId: 'not-a-uuid' })),
        { msgID: id, headers: h },
      );
      ids.push(id);
    }
    return ids;
  } finally {
    await nc.close();
  }
}
