import { sleep } from './stats.js';

/**
 * Calls `send(i, at)` for i = 0 … total-1 on a fixed schedule of `rate` a second, `at` being the
 * item's scheduled time (performance.now() ms): open loop, so a slow receiver cannot slow the
 * sender and hide its latency. Several items fall due in one turn when the process woke late.
 * Wakes for the next due item only: a fixed short tick would cost CPU at every rate, and the
 * sender's CPU is measured. Stops at `deadline` (performance.now() ms) if the schedule slipped
 * that far; resolves to how many items were sent.
 */
export async function openLoop(rate: number, total: number, send: (i: number, at: number) => void, deadline = Infinity): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  while (sent < total && performance.now() < deadline) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    for (; sent < due; sent++) send(sent, t0 + (sent * 1000) / rate);
    await sleep(Math.max(1, t0 + (sent * 1000) / rate - performance.now()));
  }
  return sent;
}
