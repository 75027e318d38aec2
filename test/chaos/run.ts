/**
 * `npm run chaos`: every chaos scenario at the full profile (≥ 2,000 orders each, 100/s), one
 * after another, then the table. Options (env): CHAOS_ORDERS, CHAOS_RATE, CHAOS_PAUSE_MS,
 * CHAOS_PG_OUTAGE_MS, CHAOS_CREDS_OUTAGE_MS, CHAOS_SLOW_GATEWAY_MS, CHAOS_SCENARIOS (comma list of
 * keys, default all). Exits 1 if any scenario failed. Ctrl-C kills every process it started.
 */
import { FULL_PROFILE, SCENARIOS, formatTable, runScenario, type Profile, type ScenarioResult } from './scenarios.js';

const env = process.env;
const num = (v: string | undefined, fallback: number) => (v === undefined || v === '' ? fallback : Number(v));
const profile: Profile = {
  ...FULL_PROFILE,
  orders: num(env.CHAOS_ORDERS, FULL_PROFILE.orders),
  rate: num(env.CHAOS_RATE, FULL_PROFILE.rate),
  pauseMs: num(env.CHAOS_PAUSE_MS, FULL_PROFILE.pauseMs),
  pgOutageMs: num(env.CHAOS_PG_OUTAGE_MS, FULL_PROFILE.pgOutageMs),
  credsOutageMs: num(env.CHAOS_CREDS_OUTAGE_MS, FULL_PROFILE.credsOutageMs),
  slowGatewayMs: num(env.CHAOS_SLOW_GATEWAY_MS, FULL_PROFILE.slowGatewayMs),
};
const keys = env.CHAOS_SCENARIOS ? env.CHAOS_SCENARIOS.split(',').map((s) => s.trim()) : Object.keys(SCENARIOS);
const results: ScenarioResult[] = [];
const t0 = Date.now();
for (const key of keys) {
  console.log(`== ${key} (${profile.orders} orders at ${profile.rate}/s)`);
  try {
    const r = await runScenario(key, profile, (m) => console.log(m), {
      deadlineMs: profile.pgOutageMs + profile.quiescenceTimeoutMs + 300_000,
    });
    results.push(r);
    console.log(
      `  ${r.ok ? 'PASS' : 'FAIL'}: accepted ${r.accepted}/${r.sent}, final ${r.final}, lost ${r.lost}, double ` +
        `${r.doubleEffects}, drift ${r.stockDrift}, unexpected crashes ${r.unexpectedCrashes}, bad 5xx ` +
        `${r.bad5xx}, quiescent after ${r.quiescenceSeconds.toFixed(1)}s`,
    );
  } catch (err) {
    console.log(`  ERROR: ${(err as Error).stack}`);
    process.exitCode = 1;
  }
}
console.log(
  `\nChaos results (${((Date.now() - t0) / 1000).toFixed(0)} s in all; NATS 3-node cluster, R3 streams, services as child processes):\n`,
);
console.log(formatTable(results));
if (results.some((r) => !r.ok) || results.length < keys.length) process.exitCode = 1;
