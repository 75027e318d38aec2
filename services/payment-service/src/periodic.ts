import type { Lifecycle, Logger } from '@orderflow/kit';

/**
 * Runs `round` every `intervalMs` (measured from the end of the previous round, so rounds never
 * overlap). The signal aborts when stop() is called; stop() waits for the round in progress.
 */
export function periodic(name: string, intervalMs: number, log: Logger, round: (signal: AbortSignal) => Promise<void>): Lifecycle {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let started = false;
  const schedule = () => {
    if (abort.signal.aborted) return;
    timer = setTimeout(() => {
      running = round(abort.signal)
        .catch((err: unknown) => log.warn({ err, sweep: name }, 'payment.sweep_round_failed'))
        .finally(schedule);
    }, intervalMs);
  };
  return {
    start() {
      if (started) return;
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
