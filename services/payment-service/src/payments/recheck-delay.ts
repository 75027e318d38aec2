import { ExponentialBackoff, halfJitterGenerator } from 'cockatiel';

export interface RecheckBackoff {
  initialMs: number;
  maxMs: number;
}

/**
 * The delay before check number `checks + 1` of something that is not decided yet, on cockatiel's
 * exponential curve (half jitter). The count is kept in the row, not in memory, so the schedule
 * survives restarts and is shared by replicas.
 */
export function recheckDelay(checks: number, b: RecheckBackoff): number {
  let d = new ExponentialBackoff({
    initialDelay: b.initialMs,
    maxDelay: Math.max(b.initialMs, b.maxMs),
    generator: halfJitterGenerator,
  }).next();
  for (let i = 1; i <= checks; i++) d = d.next(undefined);
  return d.duration;
}
