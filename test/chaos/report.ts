/**
 * What one chaos scenario ended with, and the table `npm run chaos` prints. A scenario passes
 * only when every failure column is 0: lost, double effects, stock drift, unexpected dead
 * letters, unexpected crashes and bad 5xx answers (any 5xx but a 503 with Retry-After).
 */
import type { InvariantReport } from '../support/invariants.js';
import type { CrashRecord } from '../support/platform.js';
import type { Bad5xx } from './load.js';

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
  /** Exits no one asked for and the scenario does not expect. */
  unexpectedCrashes: number;
  /** Processes the harness started again (after any exit it did not ask for, expected or not). */
  restarts: number;
  bad5xx: number;
  /** 503 + Retry-After answers: the platform saying "later" as it should. */
  unavailable503: number;
  loadSeconds: number;
  quiescenceSeconds: number;
  clientRetries: number;
  report: InvariantReport;
  crashes: CrashRecord[];
  bad5xxSamples: Bad5xx[];
  ok: boolean;
  error?: string;
}

/** Failure columns, all of which must be 0 for a pass. */
export function failureCounts(r: ScenarioResult): Record<string, number> {
  return {
    lost: r.lost,
    doubleEffects: r.doubleEffects,
    stockDrift: r.stockDrift,
    dlqUnexpected: r.dlqUnexpected,
    unexpectedCrashes: r.unexpectedCrashes,
    bad5xx: r.bad5xx,
  };
}

export function formatTable(results: ScenarioResult[]): string {
  const head = [
    'scenario',
    'sent',
    'accepted',
    'final',
    'confirmed',
    'cancelled',
    'lost',
    'double effects',
    'stock drift',
    'DLQ unexpected',
    'unexpected crashes',
    'bad 5xx',
    '503s',
    'restarts',
    'load s',
    'quiescence s',
    'client retries',
    'result',
  ];
  const rows = results.map((r) =>
    [
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
      r.unexpectedCrashes,
      r.bad5xx,
      r.unavailable503,
      r.restarts,
      r.loadSeconds.toFixed(1),
      r.quiescenceSeconds.toFixed(1),
      r.clientRetries,
      r.ok ? 'PASS' : `FAIL${r.error ? ` (${r.error.replace(/\s+/g, ' ').slice(0, 160)})` : ''}`,
    ].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
