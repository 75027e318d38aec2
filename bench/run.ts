/**
 * `npm run bench [-- --quick] [-- --only=broker,http,e2e,profile] [-- --ladders=current,replicas,machine] [-- --rates=50,100]
 * [-- --ab=<git ref> --trials=N]`: measures orderflow against the limits of this machine in one run and writes
 * bench/results/latest.json and latest.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { buildRef } from './lib/ab-build.js';
import { runCleanup } from './lib/cleanup.js';
import { parseArgs, type Config } from './lib/config.js';
import { chart } from './lib/chart.js';
import { machineBusy } from './lib/procs.js';
import { wakeupCost } from './lib/wakeup-cost.js';
import { benchNatsServers } from './lib/nats-servers.js';
import type { Results } from './lib/results.js';
import { brokerBench, type BrokerResults } from './sections/broker.js';
import { httpBench, type HttpRun } from './sections/http.js';
import { e2eBench, type E2EResults } from './sections/e2e.js';
import { profileBench } from './sections/profile.js';

const cfg = parseArgs(process.argv.slice(2));
const want = (s: string) => !cfg.only || cfg.only.has(s);
const t0 = Date.now();
const log = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}`);

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    console.error(`${sig}: cleaning up`);
    void runCleanup().finally(() => process.exit(130));
  });
}

const results: Results = {
  startedAt: new Date().toISOString(),
  quick: cfg.quick,
  durationS: 0,
  machine: {
    cpus: os.cpus().length,
    node: process.version,
    serviceNode: `${cfg.node.version} (${cfg.node.source})`,
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    busyBeforeStartPct: Math.round(100 * (await machineBusy(1000))),
    busyBeforeSectionPct: {},
  },
  errors: [],
};

/**
 * This machine may be shared: wait (bounded) for a quieter moment before a section and record
 * how busy the machine was, so a figure taken under someone else's load can be told apart.
 */
async function waitQuiet(name: string): Promise<void> {
  const deadline = Date.now() + (cfg.quick ? 5_000 : 30_000);
  let busy = await machineBusy(1000);
  while (busy > 0.3 && Date.now() < deadline) busy = await machineBusy(1000);
  results.machine.busyBeforeSectionPct[name] = Math.round(100 * busy);
}

async function section<T>(name: string, fn: () => Promise<T>, label = name): Promise<T | undefined> {
  if (!want(name) || interrupted) return undefined;
  await waitQuiet(label);
  log(`${label}… (machine ${results.machine.busyBeforeSectionPct[label]}% busy before it)`);
  try {
    return await fn();
  } catch (err) {
    const msg = `${name}: ${(err as Error).stack ?? String(err)}`;
    console.error(msg);
    results.errors.push(msg.slice(0, 2000));
    return undefined;
  }
}

const fmt = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(d));
const pct = (x: number | undefined) => (x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

try {
  log(
    `machine: ${results.machine.cpus} CPUs, load ${results.machine.loadavgAtStart.join(' ')}, ` +
      `busy before start ${results.machine.busyBeforeStartPct}%; services on Node ${results.machine.serviceNode}, ` +
      `load generator on ${results.machine.node}`,
  );
  if (want('e2e')) {
    await waitQuiet('wake-up cost');
    results.machine.wakeupCost = await wakeupCost([100, 1000], cfg.quick ? 1 : 3);
    log(
      `machine: a wake-up (bare Node TCP echo round trip, sender + echo CPU) costs ` +
        results.machine.wakeupCost.map((w) => `${w.senderUs + w.echoUs} µs at ${w.rate}/s`).join(', '),
    );
  }
  // The current nats-server is the platform's target; the machine's 2.9 is measured beside it.
  const servers = await benchNatsServers(cfg.natsUrl);
  const main = servers.current ?? servers.machine;
  results.nats = { main: main.label, compared: servers.current ? servers.machine.label : undefined };
  const compared = servers.current ? `, compared with ${servers.machine.label}` : ' only (scripts/tools.sh has not built nats-server)';
  log(`nats: ${main.label}${compared}`);
  const onMain: Config = { ...cfg, natsUrl: main.url };
  results.broker = await section('broker', () => brokerBench(onMain), `broker (nats ${main.label})`);
  if (servers.current) {
    results.brokerCompared = await section('broker', () => brokerBench(cfg), `broker (nats ${servers.machine.label})`);
  }
  // Built before the section, so its minute of npm and tsc is not inside the section's quiet wait.
  const other = cfg.abRef && want('http') ? await buildRef(cfg.abRef, log) : undefined;
  results.http = await section('http', () => httpBench(onMain, other));
  const rates = cfg.rates.length ? cfg.rates : cfg.quick ? [25, 100] : [25, 50, 100, 150, 200, 300, 400, 500, 750, 1000];
  const e2e: E2EResults[] = [];
  const ladders = [
    { key: 'current', backend: 'postgres' as const, nats: main },
    { key: 'replicas', backend: 'postgres' as const, nats: main, replicas: 2 },
    ...(servers.current ? [{ key: 'machine', backend: 'postgres' as const, nats: servers.machine }] : []),
  ].filter((l) => !cfg.ladders || cfg.ladders.has(l.key));
  // No PGlite ladder: its state lives inside each service process, where the invariant checker
  // cannot read it, and a rate whose guarantees are unchecked is no result. PGlite (the dev
  // database) is measured by the broker and http sections.
  for (const l of ladders) {
    const name = `e2e ${l.backend}${l.replicas ? ` ×${l.replicas}` : ''} (nats ${l.nats.label})`;
    const r = await section('e2e', () => e2eBench(cfg, l.backend, rates, log, l), name);
    if (r) e2e.push(r);
  }
  if (e2e.length) results.e2e = e2e;
  // Profile at the first saturated rate on Postgres (or the highest tried if none saturated).
  const pg = e2e[0]?.backend === 'postgres' ? e2e[0] : undefined;
  const satRate = pg?.steps.find((s) => s.saturated)?.offeredPerSec ?? pg?.steps.at(-1)?.offeredPerSec ?? 250;
  results.profile = await section('profile', () => profileBench(onMain, satRate));
} finally {
  await runCleanup();
}

// ---- report ------------------------------------------------------------------------------------
/** The interleaved trials of one broker figure, as printed beside its median. */
const trialList = (r: BrokerResults, k: 'consumeAckPerSec' | 'kitNoopPostgresPerSec') =>
  `trials ${r.trials.map((t) => fmt(t[k])).join(' / ')}`;
/** The bare and kit consumer rows of one server's broker results (`on` names a compared server). */
const consumerRows = (r: BrokerResults, on = ''): string[][] => [
  [`bare pull consume + ack (median)${on}`, `${fmt(r.consumeAckPerSec)} msg/s`, `baseline; ${trialList(r, 'consumeAckPerSec')}`],
  [
    `kit EventConsumer no-op (Postgres, median)${on}`,
    `${fmt(r.kitNoopPostgresPerSec)} msg/s`,
    `${pct(r.ratioKitNoopPostgres)}; ${trialList(r, 'kitNoopPostgresPerSec')}`,
  ],
];
const b = results.broker;
/** One HTTP run as a table cell, the same for every server (so the rows compare field by field). */
function describeHttpRun(r: HttpRun): string {
  return (
    `${fmt(r.reqPerSec)} req/s p50 ${r.p50Ms} p99 ${r.p99Ms} ms, server ${r.serverCpuUsPerRequest} µs CPU/req ` +
    `(${r.serverBusyPct}% of a core), all processes ${r.machineCoresPct}% of a core, steal ${r.stealPct}%`
  );
}
const h = results.http;
const rows: string[][] = [['measure', 'figure', 'baseline / ratio']];
if (b) {
  rows.push([
    'bare JetStream async publish, file stream',
    `${fmt(b.publishPerSec)} msg/s`,
    `${b.messageBytes} B payload, ${b.messages} msgs`,
  ]);
  rows.push(...consumerRows(b));
  rows.push(['kit EventConsumer no-op (PGlite)', `${fmt(b.kitNoopPglitePerSec)} msg/s`, pct(b.ratioKitNoopPglite)]);
  rows.push(['inventory-service, orders.created (Postgres)', `${fmt(b.inventoryHandlerPerSec)} msg/s`, pct(b.ratioInventory)]);
}
const bc = results.brokerCompared;
if (bc) {
  const on = `(nats ${results.nats?.compared})`;
  rows.push([`bare JetStream async publish ${on}`, `${fmt(bc.publishPerSec)} msg/s`, '']);
  rows.push(...consumerRows(bc, ` ${on}`));
}
if (h) {
  rows.push([
    `bare Hono POST echo (c=${h.connections}, median)`,
    describeHttpRun(h.bareHono),
    `baseline (median); trials ${h.trials.map((t) => fmt(t.bareHono)).join(' / ')}`,
  ]);
  rows.push([
    'POST /orders (Postgres, median)',
    describeHttpRun(h.ordersPostgres),
    `${pct(h.ratioPostgres)} (medians); trials ${h.trials.map((t) => fmt(t.ordersPostgres)).join(' / ')}`,
  ]);
  if (h.ab) {
    rows.push([
      `POST /orders at ${h.ab.ref} (${h.ab.commit.slice(0, 7)}, Postgres, median)`,
      describeHttpRun(h.ab.ordersPostgres),
      `${pct(h.ab.ratio)} (medians); trials ${h.ab.trials.map((t) => fmt(t)).join(' / ')}; ` +
        `this checkout / ${h.ab.ref} trial by trial ${h.ab.pairs.map((x) => x.toFixed(3)).join(' / ')}, median ×${h.ab.headOverRef.toFixed(3)}`,
    ]);
  }
  rows.push(['POST /orders (PGlite)', describeHttpRun(h.ordersPglite), pct(h.ratioPglite)]);
}
const width = rows.reduce((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), [] as number[]);
console.log('\n' + rows.map((r) => r.map((c, i) => c.padEnd(width[i]!)).join('  ')).join('\n'));
for (const e of results.e2e ?? []) {
  const replicas = e.replicas > 1 ? `, ${e.replicas} replicas of each saga service` : '';
  console.log(
    `\nend-to-end saga, ${e.backend}, nats ${e.nats}${replicas} (sustained ${e.sustainedPerSec}/s, ` +
      `peak ${e.peakAchievedPerSec}/s, at rest ${e.idleCpuMsPerSec} ms CPU/s, ` +
      `a lone order at rest p50 ${e.restLatencyMs.p50} max ${e.restLatencyMs.max} ms)`,
  );
  console.log(
    'offered/s  achieved/s  p50 ms  p95 ms  p99 ms  max ms  outbox lag s  errors  machine busy  ' +
      'CPU ms/order (ord inv pay gw pg nats loadgen)',
  );
  for (const s of e.steps) {
    const c = s.cpuMsPerOrder;
    const cpu = ['order-service', 'inventory-service', 'payment-service', 'sandbox-gateway', 'postgres', 'nats-server', 'load generator']
      .map((k) => fmt(c[k], 1))
      .join(' ');
    const columns = [
      String(s.offeredPerSec).padStart(9),
      fmt(s.achievedPerSec).padStart(10),
      fmt(s.p50Ms).padStart(6),
      fmt(s.p95Ms).padStart(6),
      fmt(s.p99Ms).padStart(6),
      fmt(s.maxMs).padStart(6),
      fmt(s.outboxLagMaxS, 2).padStart(12),
      String(s.errors).padStart(6),
      `${fmt(s.machineBusyPct).padStart(11)}%`,
      cpu,
    ];
    const rerun = s.rerunAfterMachinePause;
    console.log(
      columns.join('  ') +
        (s.saturated ? '  saturated' : '') +
        (rerun
          ? `  second run (first: the machine paused ${fmt(rerun.pauseMs)} ms, ${fmt(rerun.achievedPerSec)}/s, p99 ${fmt(rerun.p99Ms)} ms)`
          : ''),
    );
  }
}
if (results.profile) {
  console.log(`\nCPU profile at ${results.profile.rate} orders/s offered (Postgres): self time by package, then hottest functions`);
  for (const [name, s] of Object.entries(results.profile.services)) {
    if (name === 'sandbox-gateway') continue;
    console.log(
      `  ${name} (main thread busy ${s.busyPct}%): ${s.byPackage
        .slice(0, 6)
        .map((p) => `${p.pkg} ${p.pct}%`)
        .join(', ')}`,
    );
    for (const f of s.top.slice(0, 6)) console.log(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.fn}  ${f.where}`);
  }
}
// Targets (issue 18), on the main NATS with one replica of each service.
const pgE2e = results.e2e?.[0]?.backend === 'postgres' && results.e2e[0].replicas === 1 ? results.e2e[0] : undefined;
const sustainedFast = pgE2e?.steps.filter((s) => !s.saturated && s.p99Ms < 500) ?? [];
const bestFast = sustainedFast.length ? Math.max(...sustainedFast.map((s) => s.offeredPerSec)) : 0;
const at100 = pgE2e?.steps.find((s) => s.offeredPerSec === 100);
const cpu100 = at100 ? Object.values(at100.cpuMsPerOrder).reduce((a, b) => a + b, 0) : undefined;
results.targets = [
  {
    target: 'e2e ≥ 300 orders/s sustained with p99 accepted→confirmed < 500 ms (Postgres)',
    measured: `${bestFast}/s with p99 < 500 ms (sustained ${pgE2e?.sustainedPerSec ?? '—'}, peak ${pgE2e?.peakAchievedPerSec ?? '—'})`,
    met: bestFast >= 300,
  },
  {
    target: '≤ 10 ms CPU per order at 100/s, all processes',
    measured: cpu100 === undefined ? 'not measured' : `${cpu100.toFixed(1)} ms`,
    met: cpu100 !== undefined && cpu100 <= 10,
  },
  { target: 'POST /orders ≥ 20% of bare Hono', measured: pct(h?.ratioPostgres), met: (h?.ratioPostgres ?? 0) >= 0.2 },
  {
    target: 'kit no-op consumer ≥ 60% of bare consume+ack',
    measured: pct(b?.ratioKitNoopPostgres),
    met: (b?.ratioKitNoopPostgres ?? 0) >= 0.6,
  },
  {
    target: 'every step kept the invariants',
    measured: `${(results.e2e ?? []).reduce((n, e) => n + e.steps.length, 0)} steps checked`,
    met: !!results.e2e?.length && results.e2e.every((e) => e.steps.every((s) => s.invariants.ok)),
  },
  {
    target: 'long run: e2e ≥ 1000 orders/s sustained (Postgres)',
    measured: `${pgE2e?.sustainedPerSec ?? '—'}`,
    met: (pgE2e?.sustainedPerSec ?? 0) >= 1000,
  },
];
console.log('\ntargets');
for (const t of results.targets) console.log(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.target}: ${t.measured}`);
results.durationS = Math.round((Date.now() - t0) / 1000);
const dir = new URL('./results/', import.meta.url);
await mkdir(dir, { recursive: true });
await writeFile(new URL('latest.json', dir), JSON.stringify(results, null, 2) + '\n');
await writeFile(new URL('latest.svg', dir), chart(results));
log(`wrote bench/results/latest.json and latest.svg${results.errors.length ? ` (${results.errors.length} section error(s))` : ''}`);
process.exit(results.errors.length ? 1 : 0);
