/**
 * The bench tells a pause of the machine (every process stalled at once, its own load generator
 * too) from a stall of the platform, so it runs such a step again instead of reporting the VM.
 */
import { expect, test } from 'vitest';
import { machinePauseMs, type StepTrace, type TraceWindow } from '../../bench/lib/step-trace.js';

function window(atMs: number, eventLoopMaxMs: Record<string, number>, loadGeneratorEventLoopMaxMs: number): TraceWindow {
  return {
    atMs,
    spanMs: 500,
    finished: 0,
    maxLatencyMs: 0,
    eventLoopMaxMs,
    loadGeneratorEventLoopMaxMs,
    outboxLagMaxS: 0,
    pgWaits: {},
    checkpointBuffers: 0,
    walMb: 0,
    checkpointsStarted: 0,
  };
}

const trace = (windows: TraceWindow[], longestGapAtMs: number, longestGapMs: number): StepTrace => ({
  windows,
  longestGapAtMs,
  longestGapMs,
  pgTransactions: 0,
});

test('every process stalled at once around the gap: the machine paused, by the least of their stalls', () => {
  // The session-20 run: a 2.2 s gap in which the services and the load generator all stalled ≈ 2.1 s.
  const t = trace(
    [
      window(2_500, { order: 3, inventory: 2 }, 4),
      window(3_000, { order: 2_084, inventory: 2_067, payment: 2_058 }, 1_100),
      window(3_500, { order: 5 }, 2_175),
      window(6_000, { order: 9_000 }, 9_000),
    ],
    3_200,
    2_200,
  );
  expect(machinePauseMs(t)).toBe(2_058);
});

test('one process stalling, or the load generator alone, is not the machine', () => {
  const services = trace([window(3_000, { order: 2_000, inventory: 1_500, payment: 40 }, 1_800)], 3_000, 1_000);
  expect(machinePauseMs(services)).toBe(0);
  const loadGenerator = trace([window(3_000, { order: 12, inventory: 9, payment: 11 }, 2_500)], 3_000, 1_000);
  expect(machinePauseMs(loadGenerator)).toBe(0);
});

test('a stall outside the longest gap does not count', () => {
  const t = trace([window(500, { order: 10, inventory: 10 }, 10), window(9_000, { order: 3_000, inventory: 3_000 }, 3_000)], 500, 400);
  expect(machinePauseMs(t)).toBe(0);
});
