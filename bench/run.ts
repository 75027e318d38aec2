/**
 * `npm run bench [-- --quick] [-- --only=broker,http,e2e,profile]`: measures orderflow against
 * the limits of this machine in one run and writes bench/results/latest.json and latest.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { runCleanup } from './lib/cleanup.js';
import { parseArgs } from './lib/config.js';
import { chart } from './lib/chart.js';
import { machineBusy } from './lib/procs.js';
import type { Results } from './lib/results.js';
import { brokerBench } from './sections/broker.js';
import { httpBench } from './sections/http.js';
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
    `machine: ${results.machine.cpus} CPUs, load ${results.machine.loadavgAtStart.join(' ')}, busy before start ${results.machine.busyBeforeStartPct}%`,
  );
  results.broker = await section('broker', () => brokerBench(cfg));
  results.http = await section('http', () => httpBench(cfg));
  const rates = cfg.quick ? [25, 100] : [25, 50, 100, 150, 200, 300, 400, 500, 750, 1000];
  const e2e: E2EResults[] = [];
  for (const backend of ['postgres', 'pglite'] as const) {
    const r = await section('e2e', () => e2eBench(cfg, backend, rates, log, { nats: cfg.natsUrl }), `e2e ${backend}`);
    if (r) e2e.push(r);
  }
  if (e2e.length) results.e2e = e2e;
  // Profile at the first saturated rate on Postgres (or the highest tried if none saturated).
  const pg = e2e.find((e) => e.backend === 'postgres');
  const satRate = pg?.steps.find((s) => s.saturated)?.offeredPerSec ?? pg?.steps.at(-1)?.offeredPerSec ?? 250;
  results.profile = await section('profile', () => profileBench(cfg, satRate));
} finally {
  await runCleanup();
}

// ---- report ------------------------------------------------------------------------------------
const b = results.broker;
const h = results.http;
const rows: string[][] = [['measure', 'figure', 'baseline / ratio']];
if (b) {
  rows.push([
    'bare JetStream async publish, file stream',
    `${fmt(b.publishPerSec)} msg/s`,
    `${b.messageBytes} B payload, ${b.messages} msgs`,
  ]);
  rows.push(['bare pull consume + ack', `${fmt(b.consumeAckPerSec)} msg/s`, 'baseline']);
  rows.push(['kit EventConsumer no-op (Postgres)', `${fmt(b.kitNoopPostgresPerSec)} msg/s`, pct(b.ratioKitNoopPostgres)]);
  rows.push(['kit EventConsumer no-op (PGlite)', `${fmt(b.kitNoopPglitePerSec)} msg/s`, pct(b.ratioKitNoopPglite)]);
  rows.push(['inventory-service, orders.created (Postgres)', `${fmt(b.inventoryHandlerPerSec)} msg/s`, pct(b.ratioInventory)]);
}
if (h) {
  rows.push([
    `bare Hono POST echo (c=${h.connections})`,
    `${fmt(h.bareHono.reqPerSec)} req/s p50 ${h.bareHono.p50Ms} p99 ${h.bareHono.p99Ms} ms`,
    'baseline',
  ]);
  rows.push([
    'POST /orders (Postgres)',
    `${fmt(h.ordersPostgres.reqPerSec)} req/s p50 ${h.ordersPostgres.p50Ms} p99 ${h.ordersPostgres.p99Ms} ms`,
    pct(h.ratioPostgres),
  ]);
  rows.push([
    'POST /orders (PGlite)',
    `${fmt(h.ordersPglite.reqPerSec)} req/s p50 ${h.ordersPglite.p50Ms} p99 ${h.ordersPglite.p99Ms} ms`,
    pct(h.ratioPglite),
  ]);
}
const width = rows.reduce((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), [] as number[]);
console.log('\n' + rows.map((r) => r.map((c, i) => c.padEnd(width[i]!)).join('  ')).join('\n'));
for (const e of results.e2e ?? []) {
  console.log(`\nend-to-end saga, ${e.backend} (sustained ${e.sustainedPerSec}/s, peak ${e.peakAchievedPerSec}/s)`);
  console.log(
    'offered/s  achieved/s  p50 ms  p95 ms  p99 ms  max ms  outbox lag s  errors  machine busy  CPU ms/order (ord inv pay gw pg nats loadgen)',
  );
  for (const s of e.steps) {
    const c = s.cpuMsPerOrder;
    const cpu = ['order-service', 'inventory-service', 'payment-service', 'sandbox-gateway', 'postgres', 'nats-server', 'load generator']
      .map((k) => fmt(c[k], 1))
      .join(' ');
    console.log(
      `${String(s.offeredPerSec).padStart(9)}  ${fmt(s.achievedPerSec).padStart(10)}  ${fmt(s.p50Ms).padStart(6)}  ${fmt(s.p95Ms).padStart(6)}  ${fmt(s.p99Ms).padStart(6)}  ${fmt(s.maxMs).padStart(6)}  ${fmt(s.outboxLagMaxS, 2).padStart(12)}  ${String(s.errors).padStart(6)}  ${fmt(s.machineBusyPct).padStart(11)}%  ${cpu}${s.saturated ? '  saturated' : ''}`,
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
// Targets (issue 8).
const pgE2e = results.e2e?.find((e) => e.backend === 'postgres');
const at500 = pgE2e?.steps.find((s) => s.offeredPerSec === 500);
results.targets = [
  {
    target: 'e2e ≥ 1000 orders/s sustained (Postgres)',
    measured: `${pgE2e?.sustainedPerSec ?? '—'} sustained, peak ${pgE2e?.peakAchievedPerSec ?? '—'}`,
    met: (pgE2e?.sustainedPerSec ?? 0) >= 1000,
  },
  {
    target: 'p99 accepted→confirmed < 250 ms at 500/s',
    measured: at500 ? `${at500.p99Ms} ms` : 'not reached',
    met: !!at500 && !at500.saturated && at500.p99Ms < 250,
  },
  { target: 'HTTP ingest ≥ 40% of bare Hono', measured: pct(h?.ratioPostgres), met: (h?.ratioPostgres ?? 0) >= 0.4 },
  {
    target: 'consumer runtime ≥ 50% of bare consume+ack',
    measured: pct(b?.ratioKitNoopPostgres),
    met: (b?.ratioKitNoopPostgres ?? 0) >= 0.5,
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
