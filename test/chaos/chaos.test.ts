/**
 * CI profile of the chaos suite (`npm run chaos` is the full one): CHAOS_ORDERS orders (default
 * 200) at 50/s through the three scenarios that matter most — broker leader loss, database
 * connections dropped, and a kill -9 of the service that talks to the payment gateway — each on
 * its own 3-node NATS cluster with R3 streams. Every one must end with nothing lost, no double
 * effect, no stock drift and only the deliberate poison in the DLQ.
 */
import { describe, expect, test } from 'vitest';
import { ciProfile, formatTable, runScenario, type ScenarioResult } from './scenarios.js';

const CI_SCENARIOS = (process.env.CHAOS_CI_SCENARIOS ?? 'kill-stream-leader,postgres-terminate,kill-payment').split(',');
const profile = ciProfile();
const results: ScenarioResult[] = [];

describe.sequential(`chaos (CI profile: ${profile.orders} orders at ${profile.rate}/s)`, () => {
  for (const key of CI_SCENARIOS) {
    test(
      key,
      async () => {
        const r = await runScenario(key, profile, (m) => console.log(m));
        results.push(r);
        console.log(formatTable([r]));
        expect(r.report.violations.slice(0, 10)).toEqual([]);
        expect(r.error).toBeUndefined();
        expect({ sent: r.sent, accepted: r.accepted, final: r.final, lost: r.lost, doubleEffects: r.doubleEffects, stockDrift: r.stockDrift, dlqUnexpected: r.dlqUnexpected }).toEqual({
          sent: profile.orders,
          accepted: profile.orders,
          final: profile.orders,
          lost: 0,
          doubleEffects: 0,
          stockDrift: 0,
          dlqUnexpected: 0,
        });
      },
      profile.quiescenceTimeoutMs + 120_000,
    );
  }
});
