/**
 * End-to-end saga under open-loop load: orders are POSTed at fixed rates whatever the answers
 * take (latency is measured from each order's scheduled send time, so a slow system can't slow
 * the load down and hide its own latency), and an order counts as confirmed the moment its
 * `orders.confirmed` event passes on NATS (a core subscription: no polling error).
 * Every service runs as its own process, as deployed; here four Node processes, NATS, Postgres
 * and the load generator share the machine's cores.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { deleteNamespaceStreams, dropSchema } from '@orderflow/kit/testing';
import { checkInvariants, waitQuiescent, type InvariantInput } from '../../test/support/invariants.js';
import { onCleanup } from '../lib/cleanup.js';
import { openLoop } from '../lib/open-loop.js';
import { initialStock, orderBody, seedProducts } from '../lib/orders.js';
import { cpuMs, machineShares, machineTicks, pidsOf, startChild, wakeups, type Child } from '../lib/procs.js';
import { round, sleep, summary, until } from '../lib/stats.js';
import { describeGap, machinePauseMs, startStepTrace, type StepTrace } from '../lib/step-trace.js';
import type { Config } from '../lib/config.js';

export type Backend = 'postgres' | 'pglite';
const SERVICES = ['order-service', 'inventory-service', 'payment-service'] as const;

export interface Step {
  offeredPerSec: number;
  durationS: number;
  sent: number;
  accepted: number;
  confirmed: number;
  cancelled: number;
  /** Request failures, non-202 answers, orders not final by the drain deadline. */
  errors: number;
  /** What the errors were: `HTTP <status>`, the request error's code, `not final`, `load generator full`. */
  errorKinds?: Record<string, number>;
  achievedPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  outboxLagMaxS: number;
  drained: boolean;
  saturated: boolean;
  /** CPU ms per confirmed order by process (services, gateway, all postgres processes, nats-server, this load generator). */
  cpuMsPerOrder: Record<string, number>;
  /** Voluntary context switches (a thread slept and was woken) per confirmed order, by process: what CPU per order mostly pays for at low rates on a VM. */
  wakeupsPerOrder: Record<string, number>;
  /** Postgres transactions in the database per confirmed order during the step (pg_stat_database). */
  pgTransactionsPerOrder: number;
  /** Share of both cores busy during the step (everything on the machine). */
  machineBusyPct: number;
  /**
   * The invariant checker after the step (every order final, one capture per confirmed order,
   * stock conserved, nothing handled twice), over everything the platform has taken so far.
   */
  invariants: { ok: boolean; checkedOrders: number; violations: string[] };
  /** Window by window: finishes, event-loop delays, Postgres waits and checkpoint work (lib/step-trace.ts). */
  trace: StepTrace;
  /**
   * This step is a second run: the first was saturated or past p99 500 ms while every process,
   * the load generator too, stalled at once (machinePauseMs), and this is what it measured.
   */
  rerunAfterMachinePause?: { pauseMs: number; achievedPerSec: number; p99Ms: number; saturated: boolean };
}

export interface Platform {
  backend: Backend;
  ns: string;
  /** Processes by name; a second replica of a service is `<service>#2`. */
  children: Map<string, Child>;
  /** Where orders are POSTed: every order-service replica, in turn. */
  orderUrls: string[];
  nc: NatsConnection;
  /** What the invariant checker reads; `accepted` grows with every step. */
  invariants: InvariantInput & { accepted: string[] };
  /** orderId → when its final event passed on NATS (performance.now()). */
  finals: Map<string, { t: number; status: 'confirmed' | 'cancelled' }>;
  stop(): Promise<void>;
}

export async function startPlatform(cfg: Config, backend: Backend, nodeArgs: string[] = [], replicas = 1): Promise<Platform> {
  // PGlite is one in-process database per service: replicas would not share state.
  if (backend === 'pglite' && replicas > 1) throw new Error('replicas need the shared Postgres backend');
  const ns = `bench_${randomBytes(4).toString('hex')}`;
  const dataRoot = await mkdtemp(`${tmpdir()}/orderflow-bench-${backend}-`);
  const children = new Map<string, Child>();
  const nc = await connect({ servers: cfg.natsUrl, name: 'bench-e2e' });
  const undo = onCleanup(`platform ${ns}`, async () => {
    await Promise.allSettled([...children.values()].map((c) => c.stop()));
    await deleteNamespaceStreams(nc, ns).catch(() => undefined);
    await nc.close();
    if (backend === 'postgres') for (const s of SERVICES) await dropSchema(`${ns}_${s.split('-')[0]}`, cfg.databaseUrl);
    await rm(dataRoot, { recursive: true, force: true });
  });
  const finals = new Map<string, { t: number; status: 'confirmed' | 'cancelled' }>();
  for (const status of ['confirmed', 'cancelled'] as const) {
    const sub = nc.subscribe(`${ns}.orders.${status}`);
    void (async () => {
      for await (const m of sub) {
        const t = performance.now();
        const id = (m.json() as { orderId: string }).orderId;
        if (!finals.has(id)) finals.set(id, { t, status });
      }
    })();
  }
  try {
    const gw = await startChild({
      name: 'sandbox-gateway',
      script: 'services/sandbox-gateway/dist/main.js',
      node: cfg.node.command,
      nodeArgs,
      env: { SANDBOX_LATENCY_MS: '0', LOG_LEVEL: 'warn' },
    });
    children.set('sandbox-gateway', gw);
    const envFor = (s: (typeof SERVICES)[number]): Record<string, string> => ({
      NATS_URL: cfg.natsUrl,
      ORDERFLOW_NAMESPACE: ns,
      LOG_LEVEL: 'warn',
      PAYMENT_GATEWAY_URL: gw.url,
      // Measured here is throughput and latency, not the timeout path: no order times out.
      SAGA_TIMEOUT_MS: '3600000',
      ...cfg.serviceEnv,
      ...(s === 'inventory-service' ? { SEED_PRODUCTS: seedProducts() } : {}),
      ...(backend === 'postgres'
        ? { DATABASE_URL: cfg.databaseUrl, DATABASE_SCHEMA: `${ns}_${s.split('-')[0]}` }
        : { DATA_DIR: `${dataRoot}/${s}` }),
    });
    // The first replica of each service alone creates the schema and runs its migrations, then
    // the others join the same schema and the same durables.
    for (let r = 1; r <= replicas; r++) {
      const started = await Promise.all(
        SERVICES.map((s) =>
          startChild({
            name: r === 1 ? s : `${s}#${r}`,
            script: `services/${s}/dist/main.js`,
            node: cfg.node.command,
            nodeArgs,
            env: envFor(s),
          }),
        ),
      );
      started.forEach((c) => children.set(c.name, c));
    }
  } catch (err) {
    await undo();
    throw err;
  }
  const orderUrls = [...children.values()].filter((c) => c.name.split('#')[0] === 'order-service').map((c) => c.url);
  const invariants: Platform['invariants'] = {
    databaseUrl: cfg.databaseUrl,
    schemas: { order: `${ns}_order`, inventory: `${ns}_inventory`, payment: `${ns}_payment` },
    gatewayUrl: children.get('sandbox-gateway')!.url,
    nats: { servers: [cfg.natsUrl] },
    namespace: ns,
    accepted: [],
    initialStock: initialStock(),
  };
  return { backend, ns, children, orderUrls, nc, finals, invariants, stop: undo };
}

/** POSTs orders open-loop at `rate` for `durationS`; returns per-order scheduled times by id. */
async function load(
  urls: readonly string[],
  rate: number,
  durationS: number,
  first: number,
): Promise<{ scheduled: Map<string, number>; sent: number; errors: Record<string, number> }> {
  // A timeout makes the agent honour the server's `Keep-Alive: timeout=5` hint (Node closes an
  // idle socket a second before it; with no timeout of its own it keeps the socket forever): a
  // POST sent on a socket the server was closing at that moment failed as ECONNRESET, counted as
  // the platform's error although the platform never saw the request.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 30_000 });
  const total = Math.round(rate * durationS);
  const scheduled = new Map<string, number>();
  const errors: Record<string, number> = {};
  const failed = (kind: string) => (errors[kind] = (errors[kind] ?? 0) + 1);
  let inflight = 0;
  const maxInflight = 5000;
  const pending: Array<Promise<void>> = [];
  const post = (i: number, at: number) =>
    new Promise<void>((resolve) => {
      const body = JSON.stringify(orderBody(first + i));
      const req = http.request(
        `${urls[i % urls.length]!}/orders`,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode === 202) scheduled.set((JSON.parse(Buffer.concat(chunks).toString()) as { orderId: string }).orderId, at);
            else failed(`HTTP ${res.statusCode}`);
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        failed(err.code ?? err.message);
        resolve();
      });
      req.end(body);
    });
  const sent = await openLoop(
    rate,
    total,
    (i, at) => {
      if (inflight >= maxInflight) {
        failed('load generator full');
        return;
      }
      inflight++;
      pending.push(post(i, at).finally(() => inflight--));
    },
    performance.now() + durationS * 1000 + 2000,
  );
  await Promise.race([Promise.all(pending), sleep(35_000)]);
  agent.destroy();
  return { scheduled, sent, errors };
}

/** CPU ms and wake-ups so far, by `<process>#<pid>`. */
async function cpuSnapshot(p: Platform): Promise<{ cpu: Record<string, number>; wakes: Record<string, number> }> {
  const pids: Array<[string, number]> = [];
  for (const [name, c] of p.children) if (c.proc.pid) pids.push([`${name}#`, c.proc.pid]);
  // Per pid: backends of other clients come and go during a step, and only a pid seen at both
  // ends of the step can be counted (see perOrder).
  for (const comm of ['postgres', 'nats-server']) for (const pid of await pidsOf(comm)) pids.push([`${comm}#${pid}`, pid]);
  pids.push(['load generator', process.pid]);
  const cpu: Record<string, number> = {};
  const wakes: Record<string, number> = {};
  for (const [k, pid] of pids) [cpu[k], wakes[k]] = await Promise.all([cpuMs(pid), wakeups(pid)]);
  return { cpu, wakes };
}

/** Per order, by process name (second replicas and every postgres pid summed): only keys seen at both ends. */
function perOrder(a: Record<string, number>, b: Record<string, number>, orders: number, digits: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) {
    if (a[k] === undefined) continue;
    const name = k.split('#')[0]!;
    out[name] = (out[name] ?? 0) + (b[k]! - a[k]!);
  }
  for (const k of Object.keys(out)) out[k] = round(out[k]! / Math.max(1, orders), digits);
  return out;
}

let orderCounter = 0;

export async function runStep(p: Platform, rate: number, durationS: number, drainTimeoutS: number): Promise<Step> {
  const cpu0 = await cpuSnapshot(p);
  const ticks0 = await machineTicks();
  const trace = await startStepTrace(
    [...p.children.values()].map((c) => [c.name, c.url] as const),
    p.backend === 'postgres' ? p.invariants.databaseUrl : undefined,
  );
  const start = performance.now();
  const first = orderCounter;
  orderCounter += Math.round(rate * durationS);
  const { scheduled, sent, errors: sendErrors } = await load(p.orderUrls, rate, durationS, first);
  const ids = [...scheduled.keys()];
  const drained = await until(() => ids.every((id) => p.finals.has(id)), drainTimeoutS * 1000, 50);
  const cpu1 = await cpuSnapshot(p);
  const ticks1 = await machineTicks();
  const lat: number[] = [];
  const finishedAt: Array<[number, number]> = [];
  let confirmed = 0;
  let cancelled = 0;
  let last = start;
  for (const [id, at] of scheduled) {
    const f = p.finals.get(id);
    if (!f) continue;
    if (f.status === 'confirmed') {
      confirmed++;
      lat.push(f.t - at);
    } else cancelled++;
    finishedAt.push([f.t - trace.t0, f.t - at]);
    last = Math.max(last, f.t);
  }
  const stepTrace = await trace.stop(finishedAt);
  const finished = confirmed + cancelled;
  const s = summary(lat);
  const achieved = finished / (((drained ? last : performance.now()) - start) / 1000);
  const notFinal = scheduled.size - finished;
  const errorKinds = notFinal ? { ...sendErrors, 'not final': notFinal } : sendErrors;
  const errors = Object.values(errorKinds).reduce((a, b) => a + b, 0);
  const cpuMsPerOrder = perOrder(cpu0.cpu, cpu1.cpu, finished, 2);
  const wakeupsPerOrder = perOrder(cpu0.wakes, cpu1.wakes, finished, 1);
  const saturated = !drained || achieved < 0.9 * rate || s.p99 > 2000 || errors > 0.01 * sent;
  p.invariants.accepted.push(...ids);
  return {
    offeredPerSec: rate,
    durationS,
    sent,
    accepted: scheduled.size,
    confirmed,
    cancelled,
    errors,
    ...(errors ? { errorKinds } : {}),
    achievedPerSec: round(achieved),
    p50Ms: round(s.p50, 1),
    p95Ms: round(s.p95, 1),
    p99Ms: round(s.p99, 1),
    maxMs: round(s.max, 1),
    outboxLagMaxS: round(Math.max(0, ...stepTrace.windows.map((w) => w.outboxLagMaxS)), 3),
    drained,
    saturated,
    cpuMsPerOrder,
    wakeupsPerOrder,
    // Postgres counts a backend's transactions when it reports them (at most a second late): approximate.
    pgTransactionsPerOrder: round(stepTrace.pgTransactions / Math.max(1, finished), 1),
    machineBusyPct: round(100 * machineShares(ticks0, ticks1).busy, 1),
    // After the CPU snapshot: the checker's own reads are not the platform's cost.
    invariants: await invariantsNow(p, drainTimeoutS),
    trace: stepTrace,
  };
}

/** CPU ms per wall-clock second the platform's processes use while nothing is sent. */
async function idleCpu(p: Platform, seconds: number): Promise<number> {
  const pids = [...p.children.values()].map((c) => c.proc.pid).filter((x): x is number => !!x);
  const total = async () => (await Promise.all(pids.map((pid) => cpuMs(pid)))).reduce((a, b) => a + b, 0);
  const t0 = performance.now();
  const c0 = await total();
  await sleep(seconds * 1000);
  return round(((await total()) - c0) / ((performance.now() - t0) / 1000), 1);
}

/** Waits until the platform is at rest (bounded), then checks every promise over all orders so far. */
async function invariantsNow(p: Platform, timeoutS: number): Promise<Step['invariants']> {
  const quiet = await waitQuiescent(p.invariants, timeoutS * 1000).then(
    () => undefined,
    (err: Error) => err.message,
  );
  const r = await checkInvariants(p.invariants);
  const violations = r.violations.map((v) => `${v.kind}${v.orderId ? ` ${v.orderId}` : ''}: ${v.detail}`);
  if (quiet) violations.unshift(`not at rest: ${quiet}`);
  return { ok: violations.length === 0, checkedOrders: r.orders.inDb, violations: violations.slice(0, 10) };
}

export interface E2EResults {
  backend: Backend;
  /** Which NATS, and how many replicas of each saga service. */
  nats: string;
  replicas: number;
  steps: Step[];
  /** Highest offered rate met (≥ 90 % achieved, drained, p99 < 2 s, < 1 % errors). */
  sustainedPerSec: number;
  /** Highest completion rate seen in any step. */
  peakAchievedPerSec: number;
  /**
   * CPU the platform's own processes (services and gateway) use at rest, after the warm-up, in
   * ms per second of wall time summed over processes: pollers, sweeps, heartbeats and pulls.
   */
  idleCpuMsPerSec: number;
  /**
   * accepted→confirmed of a lone order at rest (one a second, five in all, after the at-rest
   * CPU reading): what a user of a quiet platform sees, lingers included.
   */
  restLatencyMs: { p50: number; max: number };
}

export async function e2eBench(
  cfg: Config,
  backend: Backend,
  rates: number[],
  log: (s: string) => void,
  o: { nats: { url: string; label: string }; replicas?: number },
): Promise<E2EResults> {
  const durationS = cfg.quick ? 4 : 10;
  const replicas = o.replicas ?? 1;
  const label = `${backend}${replicas > 1 ? ` ×${replicas}` : ''} (nats ${o.nats.label})`;
  const p = await startPlatform({ ...cfg, natsUrl: o.nats.url }, backend, [], replicas);
  try {
    // Warm-up (not reported): JIT, pools, consumers' first pulls. 3,000 orders, not 100: with 100
    // the first ladder's load generator cost 1.6-1.9 ms per order at 100/s and the same steps of a
    // later ladder in the same process 0.9-1.2; with 3,000 it is 1.3, and the services' cost at
    // 25/s falls by a fifth (session 18). A step figure is meant to be a warm process's.
    await runStep(p, 150, cfg.quick ? 1 : 20, 30);
    const idleCpuMsPerSec = await idleCpu(p, cfg.quick ? 2 : 5);
    log(`  ${label} at rest: ${idleCpuMsPerSec} ms CPU per second, services and gateway together`);
    // A faster path that loses a guarantee is no result: the run fails.
    const assertInvariants = (s: Step, what: string) => {
      if (!s.invariants.ok) throw new Error(`${label} ${what} broke invariants:\n  ${s.invariants.violations.join('\n  ')}`);
    };
    const lone = await runStep(p, 1, cfg.quick ? 2 : 5, 30);
    assertInvariants(lone, 'lone orders');
    const restLatencyMs = { p50: lone.p50Ms, max: lone.maxMs };
    log(`  ${label} a lone order at rest: p50 ${restLatencyMs.p50} ms, max ${restLatencyMs.max} ms accepted→confirmed`);
    const steps: Step[] = [];
    for (const rate of rates) {
      let s = await runStep(p, rate, durationS, cfg.quick ? 15 : 30);
      const pauseMs = s.saturated || s.p99Ms > 500 ? machinePauseMs(s.trace) : 0;
      if (pauseMs) {
        // A paused run's figures are set aside, its guarantees are not.
        assertInvariants(s, `at ${rate}/s`);
        log(`    ${describeGap(s.trace)}`);
        log(`  ${label} ${rate}/s: every process stalled ${pauseMs} ms at once (the machine paused); the step runs again`);
        const first = { pauseMs, achievedPerSec: s.achievedPerSec, p99Ms: s.p99Ms, saturated: s.saturated };
        s = { ...(await runStep(p, rate, durationS, cfg.quick ? 15 : 30)), rerunAfterMachinePause: first };
      }
      steps.push(s);
      const cpu = Object.values(s.cpuMsPerOrder).reduce((a, b) => a + b, 0);
      log(
        `  ${label} ${rate}/s → ${s.achievedPerSec}/s p50 ${s.p50Ms} p99 ${s.p99Ms} ms, lag ${s.outboxLagMaxS}s, ` +
          `errors ${s.errors}${
            s.errorKinds
              ? ` (${Object.entries(s.errorKinds)
                  .map(([k, n]) => `${k} ×${n}`)
                  .join(', ')})`
              : ''
          }, CPU ${cpu.toFixed(1)} ms/order, ` +
          `wake-ups ${Object.values(s.wakeupsPerOrder)
            .reduce((a, b) => a + b, 0)
            .toFixed(0)}/order, ${s.pgTransactionsPerOrder} pg transactions/order, invariants ${s.invariants.ok ? 'ok' : 'BROKEN'}` +
          (s.saturated ? ' (saturated)' : '') +
          (s.rerunAfterMachinePause ? ' (second run)' : ''),
      );
      // Where the latency came from when it jumped: the step's longest pause in finishing orders.
      if (s.p99Ms > 500 || s.trace.longestGapMs > 250) log(`    ${describeGap(s.trace)}`);
      assertInvariants(s, `at ${rate}/s`);
      if (s.saturated) break;
    }
    const ok = steps.filter((s) => !s.saturated);
    return {
      backend,
      nats: o.nats.label,
      replicas,
      idleCpuMsPerSec,
      restLatencyMs,
      steps,
      sustainedPerSec: ok.length ? Math.max(...ok.map((s) => s.offeredPerSec)) : 0,
      peakAchievedPerSec: Math.max(0, ...steps.map((s) => s.achievedPerSec)),
    };
  } finally {
    await p.stop();
  }
}
