/**
 * CI profile of the chaos suite (`npm run chaos` is the full one): CHAOS_ORDERS orders (default
 * 200) at 50/s through the scenarios that matter most — broker leader loss, database connections
 * dropped, the database away for longer than every retry budget, and a kill -9 of the service
 * that talks to the payment gateway — each on its own 3-node NATS cluster with R3 streams. Every
 * one must end with nothing lost, no double effect, no stock drift, only the deliberate poison in
 * the DLQ, no process crashed that the scenario did not kill, and no 5xx but a 503 with Retry-After.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { disposeAll } from '../support/reaper.js';
import { failureCounts } from './report.js';
import { ciProfile, formatTable, runScenario } from './scenarios.js';

const CI_SCENARIOS = (process.env.CHAOS_CI_SCENARIOS ?? 'kill-stream-leader,postgres-terminate,kill-payment,postgres-down').split(',');
const profile = ciProfile();
// Set-up, the load, the longest fault (the Postgres outage) and quiescence, with room to spare.
const TEST_TIMEOUT_MS = profile.pgOutageMs + profile.quiescenceTimeoutMs + 90_000;

// Whatever a scenario left running (it failed, or vitest timed it out and moved on) dies here.
afterEach(() => disposeAll(), 120_000);

describe.sequential(`chaos (CI profile: ${profile.orders} orders at ${profile.rate}/s)`, () => {
  for (const key of CI_SCENARIOS) {
    test(
      key,
      async () => {
        // Our own deadline comes first, so the scenario reports and cleans up instead of being abandoned.
        const r = await runScenario(key, profile, (m) => console.log(m), { deadlineMs: TEST_TIMEOUT_MS - 30_000 });
        console.log(formatTable([r]));
        expect(r.report.violations.slice(0, 10)).toEqual([]);
        expect(r.error).toBeUndefined();
        expect({ sent: r.sent, accepted: r.accepted, final: r.final, ...failureCounts(r) }).toEqual({
          sent: profile.orders,
          accepted: profile.orders,
          final: profile.orders,
          lost: 0,
          doubleEffects: 0,
          stockDrift: 0,
          dlqUnexpected: 0,
          unexpectedCrashes: 0,
          bad5xx: 0,
        });
      },
      TEST_TIMEOUT_MS,
    );
  }
});
