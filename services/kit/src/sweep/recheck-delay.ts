import { ExponentialBackoff, halfJitterGenerator } from 'cockatiel';
import type { BackoffSettings } from '../faults/backoff.js';

/**
 * The delay before check number `checks + 1` of something that is not decided yet, on cockatiel's
 * exponential curve (half jitter). The count is kept in the row, not in memory, so the schedule
 * survives restarts and is shared by replicas.
 */
export function recheckDelay(checks: number, b: BackoffSettings): number {
  let d = new ExponentialBackoff({
    initialDelay: b.initialMs,
    maxDelay: Math.max(b.initialMs, b.maxMs),
    generator: halfJitterGenerator,
  }).next();
  for (let i = 1; i <= checks; i++) d = d.next(undefined);
  return d.duration;
}
