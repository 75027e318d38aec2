/**
 * Chaos scenarios on a real 3-node NATS JetStream cluster (R3 streams) with every service as a
 * child process: a load generator places orders at a steady rate, a fault is injected mid-load,
 * then the run waits for quiescence and the invariant checker reads Postgres, the gateway and the
 * streams. Used by `npm run chaos` (full profile, test/chaos/run.ts) and by the CI profile
 * (test/chaos/chaos.test.ts).
 */
import pg from 'pg';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { TEST_DATABASE_URL } from '@orderflow/kit/testing';
import type { ServiceName } from '@orderflow/kit';
import { Platform } from '../support/platform.js';
import { TestNatsCluster } from '../support/cluster.js';
import { checkInvariants, waitQuiescent, type InvariantInput, type InvariantReport } from '../support/invariants.js';

export interface Profile {
  orders: number;
  /** Orders per second offered by the load generator. */
  rate: number;
  /** How long a paused NATS node stays stopped (must exceed the consumers' ack wait). */
  pauseMs: number;
  quiescenceTimeoutMs: number;
}

export const FULL_PROFILE: Profile = { orders: 2000, rate: 100, pauseMs: 35_000, quiescenceTimeoutMs: 240_000 };

export function ciProfile(env: Record<string, string | undefined> = process.env): Profile {
  return { orders: Number(env.CHAOS_ORDERS ?? 200), rate: 50, pauseMs: 8_000, quiescenceTimeoutMs: 120_000 };
}

export interface FaultContext {
  p: Platform;
  cluster: TestNatsCluster;
  profile: Profile;
  /** Resolves once the load generator has sent this many orders. */
  sent(n: number): Promise<void>;
  log(msg: string): void;
}

export interface Scenario {
  name: string;
  /** What is injected, for the table. */
  fault: string;
  /** Runs alongside the load; resolves when the fault is over (everything restarted). */
  inject(ctx: FaultContext): Promise<void>;
}

export interface ScenarioResult {
  scenario: string;
  fault: string;
  sent: number;
  accepted: number;
  final: number;
  confirmed: number;
  cancelled: number;
  lost: number;
  doubleEffects: number;
  stockDrift: number;
  dlqUnexpected: number;
  loadSeconds: number;
  quiescenceSeconds: number;
  clientRetries: number;
  report: InvariantReport;
  ok: boolean;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function killAndRestart(service: ServiceName, downMs = 2000): Scenario {
  return {
    name: `kill -9 ${service}`,
    fault: `SIGKILL at 30% of the load, restarted ${downMs / 1000}s later`,
    async inject({ p, profile, sent, log }) {
      await sent(Math.floor(profile.orders * 0.3));
      await p.kill(service);
      log(`killed ${service}`);
      await sleep(downMs);
      await p.startInstance(service, service, true);
      log(`${service} back`);
    },
  };
}

/** Drops every Postgres connection the services hold (not the shared server: other tests use it). */
async function terminateBackends(p: Platform): Promise<number> {
  const c = new pg.Client({ connectionString: TEST_DATABASE_URL, application_name: 'chaos' });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = ANY($1::text[]) AND pid <> pg_backend_pid()`,
      [Object.values(p.schemas)],
    );
    return r.rows[0]!.n;
  } finally {
    await c.end();
  }
}

async function gatewayConfig(p: Platform, cfg: { failureRate?: number; latencyMs?: number }): Promise<void> {
  const r = await fetch(`${p.gateway.url}/admin/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(cfg) });
  if (!r.ok) throw new Error(`gateway config: ${r.status}`);
}

export const SCENARIOS: Record<string, Scenario> = {
  'kill-order': killAndRestart('order-service'),
  'kill-inventory': killAndRestart('inventory-service'),
  'kill-payment': killAndRestart('payment-service'),
  'kill-stream-leader': {
    name: 'kill -9 NATS stream leader',
    fault: 'SIGKILL the ORDERS leader node at 30%, restarted 5s later',
    async inject({ p, cluster, profile, sent, log }) {
      await sent(Math.floor(profile.orders * 0.3));
      const leader = await cluster.streamLeader(`${p.ns.toUpperCase()}_ORDERS`);
      await cluster.kill(leader.index);
      log(`killed ${leader.name} (ORDERS leader)`);
      await sleep(5000);
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
      log(`terminated ${await terminateBackends(p)} backends`);
      await sent(Math.floor(profile.orders * 0.6));
      log(`terminated ${await terminateBackends(p)} backends`);
    },
  },
  'pause-nats-node': {
    name: 'pause NATS node > ack wait',
    fault: 'SIGSTOP the ORDERS leader at 30% for pauseMs, then SIGCONT',
    async inject({ p, cluster, profile, sent, log }) {
      await sent(Math.floor(profile.orders * 0.3));
      const leader = await cluster.streamLeader(`${p.ns.toUpperCase()}_ORDERS`);
      cluster.pause(leader.index);
      log(`paused ${leader.name} for ${profile.pauseMs} ms`);
      await sleep(profile.pauseMs);
      cluster.resume(leader.index);
      log(`resumed ${leader.name}`);
    },
  },
  'gateway-flapping': {
    name: 'gateway flapping',
    fault: 'failureRate toggles 0.6 ↔ 0 every second (latency 0–50 ms) for the whole load',
    async inject({ p, profile, sent, log }) {
      let done = false;
      const finished = sent(profile.orders).then(() => (done = true));
      let on = false;
      while (!done) {
        on = !on;
        await gatewayConfig(p, on ? { failureRate: 0.6, latencyMs: 50 } : { failureRate: 0, latencyMs: 0 });
        await Promise.race([sleep(1000), finished]);
      }
      await gatewayConfig(p, { failureRate: 0, latencyMs: 0 });
      log('gateway healthy again');
    },
  },
};

const PRODUCTS = 10;
/** Every 25th order is over the gateway's decline limit: payments.failed → release → cancelled. */
const EXPENSIVE = 'chaos-expensive';

export async function runScenario(key: string, profile: Profile, log: (msg: string) => void = () => undefined): Promise<ScenarioResult> {
  const scenario = SCENARIOS[key];
  if (!scenario) throw new Error(`unknown scenario ${key}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const cluster = await TestNatsCluster.create();
  let p: Platform | undefined;
  try {
    await cluster.start();
    p = new Platform({
      childProcesses: ['order-service', 'inventory-service', 'payment-service'],
      natsUrl: cluster.urls,
      natsConnect: () => cluster.connect(),
      // A long saga timeout: a lost event must show as an open order, not hide behind a timeout cancel.
      env: { STREAM_REPLICAS: '3', SAGA_TIMEOUT_MS: '900000', SHUTDOWN_TIMEOUT_MS: '10000' },
    });
    await p.start();
    const plat = p;
    // ~10% of the cheap orders find no stock (out_of_stock), so both saga branches run.
    const perProduct = Math.floor((profile.orders * 0.9) / PRODUCTS);
    const initialStock: Record<string, number> = {};
    for (let i = 0; i < PRODUCTS; i++) initialStock[`chaos-${i}`] = perProduct;
    initialStock[EXPENSIVE] = profile.orders;
    for (const [id, n] of Object.entries(initialStock)) await plat.setStock(id, n, id === EXPENSIVE ? 20_000 : 2);

    // Deliberate poison, published before the load: the DLQ must end up with exactly these.
    const poison = await publishPoison(plat, cluster, 3);

    const load = new LoadGenerator(plat, profile, (i) => (i % 25 === 24 ? EXPENSIVE : `chaos-${i % PRODUCTS}`));
    const started = Date.now();
    let faultError: string | undefined;
    const faultDone = scenario.inject({ p: plat, cluster, profile, sent: (n) => load.waitSent(n), log: (m) => log(`  [${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`) }).catch(
      (err: Error) => void (faultError = `fault injection failed: ${err.message}`),
    );
    await load.run();
    const loadSeconds = (Date.now() - started) / 1000;
    await faultDone;
    log(`  load done in ${loadSeconds.toFixed(1)}s: sent ${load.sent}, accepted ${load.accepted.size}, retries ${load.retries}`);

    const input: InvariantInput = {
      databaseUrl: TEST_DATABASE_URL,
      schemas: { order: plat.schemas['order-service'], inventory: plat.schemas['inventory-service'], payment: plat.schemas['payment-service'] },
      gatewayUrl: plat.gateway.url,
      nats: { servers: cluster.urls.split(',') },
      namespace: plat.ns,
      accepted: [...load.accepted],
      initialStock,
      expectedPoison: poison,
    };
    const q0 = Date.now();
    let error: string | undefined = faultError;
    await waitQuiescent(input, profile.quiescenceTimeoutMs, (m) => log(`  ${m}`)).catch((err: Error) => (error = err.message));
    const quiescenceSeconds = (Date.now() - q0) / 1000;
    const report = await checkInvariants(input);
    if (report.orders.inDb !== load.accepted.size) error = `${error ? `${error}; ` : ''}${report.orders.inDb} orders in the database for ${load.accepted.size} accepted`;
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
      loadSeconds,
      quiescenceSeconds,
      clientRetries: load.retries,
      report,
      ok: report.ok && !error && load.sent === load.accepted.size,
      error: error ?? (load.sent !== load.accepted.size ? `${load.sent - load.accepted.size} orders never accepted: ${load.lastError}` : undefined),
    };
    if (!r.ok) {
      log(`  violations: ${JSON.stringify(report.violations.slice(0, 10))}`);
      for (const [id, inst] of plat.instances) log(`  --- ${id} output tail ---\n${inst.output.join('').slice(-3000)}`);
    }
    return r;
  } finally {
    await p?.stop().catch(() => undefined);
    await cluster.dispose();
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
      await js.publish(`${p.ns}.orders.created`, new TextEncoder().encode(i % 2 ? '{"orderId": 42' : JSON.stringify({ version: 'v1', orderId: 'not-a-uuid' })), { msgID: id, headers: h });
      ids.push(id);
    }
    return ids;
  } finally {
    await nc.close();
  }
}

/**
 * Places orders at a steady rate, each with its own Idempotency-Key; a request that fails
 * (service down, 5xx, timeout) is retried with the same key for up to 60 s, as a real client
 * would. Accepted = the order id a 202 (or its 200 replay) returned.
 */
export class LoadGenerator {
  sent = 0;
  retries = 0;
  lastError = '';
  readonly accepted = new Set<string>();
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  constructor(
    private readonly p: Platform,
    private readonly profile: Profile,
    private readonly productFor: (i: number) => string,
  ) {}

  waitSent(n: number): Promise<void> {
    if (this.sent >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  async run(): Promise<void> {
    const t0 = Date.now();
    const inflight = new Set<Promise<void>>();
    const key = `${this.p.ns}-${Date.now()}`;
    for (let i = 0; i < this.profile.orders; i++) {
      const due = t0 + (i * 1000) / this.profile.rate;
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
    const body = JSON.stringify({ customerId: `chaos-${i}`, items: [{ productId: this.productFor(i), quantity: 1 }] });
    const giveUp = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      try {
        const url = this.p.url('order-service', this.p.anyInstance('order-service'));
        const r = await fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idemKey },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const j = (await r.json()) as { orderId?: string };
        if ((r.status === 202 || r.status === 200) && j.orderId) {
          this.accepted.add(j.orderId);
          return;
        }
        this.lastError = `HTTP ${r.status}`;
        if (r.status < 500) return; // a 4xx will not change on retry
      } catch (err) {
        this.lastError = (err as Error).message;
      }
      if (Date.now() > giveUp) return;
      this.retries++;
      await sleep(Math.min(200 * 2 ** attempt, 2000));
    }
  }
}

export function formatTable(results: ScenarioResult[]): string {
  const head = ['scenario', 'sent', 'accepted', 'final', 'confirmed', 'cancelled', 'lost', 'double effects', 'stock drift', 'DLQ unexpected', 'load s', 'quiescence s', 'client retries', 'result'];
  const rows = results.map((r) => [
    r.scenario,
    r.sent,
    r.accepted,
    r.final,
    r.confirmed,
    r.cancelled,
    r.lost,
    r.doubleEffects,
    r.stockDrift,
    r.dlqUnexpected,
    r.loadSeconds.toFixed(1),
    r.quiescenceSeconds.toFixed(1),
    r.clientRetries,
    r.ok ? 'PASS' : `FAIL${r.error ? ` (${r.error.slice(0, 120)})` : ''}`,
  ].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
