/**
 * HTTP ingest: POST /orders on order-service (validation, one transaction with the order row and
 * its outbox row, relay to JetStream) against a bare Hono POST echo, same load generator
 * (autocannon), same concurrency, each server its own process.
 *
 * The Postgres figure and its baseline are the medians of interleaved trials (echo, POST, echo,
 * POST…, both servers up throughout): on this VM one echo run gave 13.7k and another 26.6k req/s
 * for the same code on the same quiet machine, so a ratio of two single runs said more about the
 * moment than about the code.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import autocannon from 'autocannon';
import { connect } from '@nats-io/transport-node';
import { deleteNamespaceStreams, dropSchema } from '@orderflow/kit/testing';
import type { RefBuild } from '../lib/ab-build.js';
import { onCleanup } from '../lib/cleanup.js';
import { orderBody } from '../lib/orders.js';
import { cpuMs, machineShares, machineTicks, startChild } from '../lib/procs.js';
import { round, summary } from '../lib/stats.js';
import type { Config } from '../lib/config.js';

export interface HttpRun {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /**
   * CPU of the server process per request (µs) and its share of one core over the run: whether the
   * server itself is the limit (≈ 100 %) or what it waits on (Postgres, NATS, the load generator).
   */
  serverCpuUsPerRequest: number;
  serverBusyPct: number;
  /**
   * CPU of every process over the run, in % of one core (200 on two cores: the machine full;
   * Postgres, NATS, the relay and the load generator count too), and the share of the machine
   * the hypervisor gave to others while this VM waited.
   */
  machineCoresPct: number;
  stealPct: number;
}

export interface HttpResults {
  connections: number;
  durationS: number;
  /** The trial with the median rate of each side (so a run's figures belong together). */
  bareHono: HttpRun;
  ordersPostgres: HttpRun;
  /** Requests/s of each interleaved trial, in the order run. */
  trials: Array<{ bareHono: number; ordersPostgres: number }>;
  ordersPglite: HttpRun;
  ratioPostgres: number;
  ratioPglite: number;
  /** With `--ab=<ref>`: order-service on Postgres as built at that ref, in the same trials. */
  ab?: HttpAb;
}

export interface HttpAb {
  ref: string;
  commit: string;
  /** The trial with the median rate, as ordersPostgres. */
  ordersPostgres: HttpRun;
  /** Requests/s of each trial, in the order of HttpResults.trials. */
  trials: number[];
  /** Its median over the echo's. */
  ratio: number;
  /**
   * This checkout's rate over the ref's in each trial (the two ran back to back, their order
   * swapped every trial), and the median of those: the change's worth with the hour's drift
   * taken out, where the ratio of two medians would keep it.
   */
  pairs: number[];
  headOverRef: number;
}

/** `connections` clients POSTing an order body to `url` back to back for `duration` seconds. */
function post(url: string, connections: number, duration: number) {
  return autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(orderBody(1)),
    connections,
    duration,
  });
}

async function cannon(url: string, connections: number, duration: number, serverPid: number | undefined): Promise<HttpRun> {
  await post(url, connections, 1); // this server's pools and sockets back in use after the other's trial
  const cpu0 = serverPid ? await cpuMs(serverPid) : 0;
  const ticks0 = await machineTicks();
  const t0 = performance.now();
  const r = await post(url, connections, duration);
  const cpu = serverPid ? (await cpuMs(serverPid)) - cpu0 : 0;
  const elapsedMs = performance.now() - t0;
  const machine = machineShares(ticks0, await machineTicks());
  return {
    machineCoresPct: round(100 * availableParallelism() * machine.busy),
    stealPct: round(100 * machine.steal, 1),
    serverCpuUsPerRequest: round((cpu * 1000) / Math.max(1, r.requests.total)),
    serverBusyPct: round((100 * cpu) / elapsedMs),
    reqPerSec: round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

/** The run whose rate is the median of the trials (the middle one of an odd count). */
function medianRun(runs: HttpRun[]): HttpRun {
  const p50 = summary(runs.map((r) => r.reqPerSec)).p50;
  return runs.reduce((best, r) => (Math.abs(r.reqPerSec - p50) < Math.abs(best.reqPerSec - p50) ? r : best));
}

/** Seconds of unrecorded load on each server before its trials. */
const WARM_UP_S = 10;

export async function httpBench(cfg: Config, other?: RefBuild): Promise<HttpResults> {
  const connections = 32;
  const duration = cfg.quick ? 3 : 8;
  const trialCount = cfg.httpTrials ?? (cfg.quick ? 1 : 3);
  const ns = `bench_${randomBytes(4).toString('hex')}`;
  const schema = `${ns}_order`;
  // The other side of an A/B has a namespace and a schema of its own: the two never share a row.
  const nsAb = `bench_${randomBytes(4).toString('hex')}`;
  const schemaAb = `${nsAb}_order`;
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dataDir = await mkdtemp(`${tmpdir()}/orderflow-bench-`);
  const undo = onCleanup(`http bench ${ns}`, async () => {
    const nc = await connect({ servers: cfg.natsUrl });
    await deleteNamespaceStreams(nc, ns);
    if (other) await deleteNamespaceStreams(nc, nsAb);
    await nc.close();
    await dropSchema(schema, cfg.databaseUrl);
    if (other) await dropSchema(schemaAb, cfg.databaseUrl);
    await rm(dataDir, { recursive: true, force: true });
  });
  const orderService = (db: Record<string, string>, at?: RefBuild) =>
    startChild({
      name: at ? `order-service at ${at.ref} (ingest bench)` : 'order-service (ingest bench)',
      script: 'services/order-service/dist/main.js',
      cwd: at?.dir,
      node: cfg.node.command,
      env: {
        NATS_URL: cfg.natsUrl,
        ORDERFLOW_NAMESPACE: at ? nsAb : ns,
        LOG_LEVEL: 'warn',
        SAGA_TIMEOUT_MS: '3600000',
        ...cfg.serviceEnv,
        ...db,
      },
    });
  try {
    const echoRuns: HttpRun[] = [];
    const postRuns: HttpRun[] = [];
    const abRuns: HttpRun[] = [];
    const echo = await startChild({
      name: 'hono-echo',
      script: 'bench/servers/hono-echo.ts',
      node: cfg.node.command,
      nodeArgs: ['--import', 'tsx'],
      env: {},
    });
    try {
      const svc = await orderService({ DATABASE_URL: cfg.databaseUrl, DATABASE_SCHEMA: schema });
      const svcAb = other ? await orderService({ DATABASE_URL: cfg.databaseUrl, DATABASE_SCHEMA: schemaAb }, other) : undefined;
      try {
        // Unrecorded load on each first: without it the trials rose run after run on both sides
        // (echo 18-21k, then 20-26k, then 30-31k req/s in session 20's three runs), the first
        // measuring processes (and a load generator) still warming, not the code.
        if (!cfg.quick) {
          await post(`${echo.url}/echo`, connections, WARM_UP_S);
          await post(`${svc.url}/orders`, connections, WARM_UP_S);
          if (svcAb) await post(`${svcAb.url}/orders`, connections, WARM_UP_S);
        }
        for (let i = 0; i < trialCount; i++) {
          echoRuns.push(await cannon(`${echo.url}/echo`, connections, duration, echo.proc.pid));
          const head = () => cannon(`${svc.url}/orders`, connections, duration, svc.proc.pid);
          if (!svcAb) {
            postRuns.push(await head());
            continue;
          }
          // Swapped every trial, so neither side always runs right after the echo.
          const ab = () => cannon(`${svcAb.url}/orders`, connections, duration, svcAb.proc.pid);
          if (i % 2 === 0) {
            postRuns.push(await head());
            abRuns.push(await ab());
          } else {
            abRuns.push(await ab());
            postRuns.push(await head());
          }
        }
      } finally {
        await svcAb?.stop();
        await svc.stop();
      }
    } finally {
      await echo.stop();
    }
    const pglite = await orderService({ DATA_DIR: dataDir });
    let ordersPglite: HttpRun;
    try {
      ordersPglite = await cannon(`${pglite.url}/orders`, connections, duration, pglite.proc.pid);
    } finally {
      await pglite.stop();
    }
    const bareHono = medianRun(echoRuns);
    const ordersPostgres = medianRun(postRuns);
    let ab: HttpAb | undefined;
    if (other) {
      const pairs = postRuns.map((r, i) => round(r.reqPerSec / Math.max(1, abRuns[i]!.reqPerSec), 3));
      const median = medianRun(abRuns);
      ab = {
        ref: other.ref,
        commit: other.commit,
        ordersPostgres: median,
        trials: abRuns.map((r) => r.reqPerSec),
        ratio: round(median.reqPerSec / bareHono.reqPerSec, 3),
        pairs,
        headOverRef: round(summary(pairs).p50, 3),
      };
    }
    return {
      connections,
      durationS: duration,
      bareHono,
      ordersPostgres,
      trials: echoRuns.map((e, i) => ({ bareHono: e.reqPerSec, ordersPostgres: postRuns[i]!.reqPerSec })),
      ordersPglite,
      ratioPostgres: round(ordersPostgres.reqPerSec / bareHono.reqPerSec, 3),
      ratioPglite: round(ordersPglite.reqPerSec / bareHono.reqPerSec, 3),
      ab,
    };
  } finally {
    await undo();
  }
}
