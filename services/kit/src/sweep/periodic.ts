import type { Lifecycle } from '../definition.js';
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
 * Runs a round every `intervalMs`, measured from the end of the previous one. start() is
 * idempotent; stop() may be called more than once and waits for the round in progress.
 */
export function periodic(o: PeriodicOptions): Lifecycle {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let started = false;
  const schedule = () => {
    if (abort.signal.aborted) return;
    timer = setTimeout(() => {
      running = o
        .round(abort.signal)
        .catch((err: unknown) => o.log.warn({ err, sweep: o.name }, o.failedEvent))
        .finally(schedule);
    }, o.intervalMs);
  };
  return {
    start() {
      if (started || abort.signal.aborted) return;
      started = true;
      schedule();
    },
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
