import type { Lifecycle } from '../definition.js';
import { RetryDelays } from '../faults/backoff.js';
import type { Logger } from '../log.js';

export interface PeriodicOptions {
  /** Named in the failure log line (`sweep`), e.g. 'refund'. */
  name: string;
  /** The pause after each round, so rounds never overlap. */
  intervalMs: number;
  log: Logger;
  /** Log event of a round that threw, e.g. 'payment.sweep_round_failed'; the next round is the retry. */
  failedEvent: string;
  /** One round; the signal aborts when stop() is called. */
  round: (signal: AbortSignal) => Promise<void>;
}

/**
 * Runs a round every `intervalMs`, measured from the end of the previous one. A round that throws
 * is logged and the next waits longer, on cockatiel's backoff from `intervalMs` up to four times
 * it (a database that is away is not asked again at full rate), until a round succeeds. start() is
 * idempotent; stop() may be called more than once and waits for the round in progress.
 */
export function periodic(o: PeriodicOptions): Lifecycle {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let started = false;
  const failures = new RetryDelays({ initialMs: o.intervalMs, maxMs: 4 * o.intervalMs });
  const schedule = (delayMs: number) => {
    if (abort.signal.aborted) return;
    timer = setTimeout(() => {
      running = o.round(abort.signal).then(
        () => {
          failures.reset();
          schedule(o.intervalMs);
        },
        (err: unknown) => {
          const retryInMs = Math.max(o.intervalMs, failures.next());
          o.log.warn({ err, sweep: o.name, failures: failures.attempts, retryInMs }, o.failedEvent);
          schedule(retryInMs);
        },
      );
    }, delayMs);
  };
  return {
    start() {
      if (started || abort.signal.aborted) return;
      started = true;
      schedule(o.intervalMs);
    },
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
