/**
 * Work to finish after a service has stopped and before the process exits (e.g. flushing spans).
 * A module of its own with no dependencies, so `otel.ts` can register a hook without loading
 * the rest of the kit before the OpenTelemetry SDK has started.
 */
const hooks: Array<() => Promise<void>> = [];

export function onShutdown(fn: () => Promise<void>): void {
  hooks.push(fn);
}

/** Runs every hook (in registration order, each failure contained); `runMain` calls this. */
export async function runShutdownHooks(): Promise<void> {
  for (const fn of hooks.splice(0)) await fn().catch(() => undefined);
}

interface SignalLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The process's SIGTERM/SIGINT handling, one way for every entry point: run `stop` (readiness
 * off, drain, close), then the shutdown hooks, and exit 0; exit 1 if stopping fails or takes
 * longer than `timeoutMs` (the orchestrator's grace period must not be overrun by a hung drain).
 */
export function exitOnSignals(stop: () => Promise<void>, o: { log: SignalLog; timeoutMs: number }): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    o.log.info({ signal }, 'process.signal');
    setTimeout(() => {
      o.log.error({ timeoutMs: o.timeoutMs }, 'process.shutdown_timeout');
      process.exit(1);
    }, o.timeoutMs).unref();
    stop().then(
      // The last spans (the drain itself included) are exported before the process goes.
      () => runShutdownHooks().finally(() => process.exit(0)),
      (err: unknown) => {
        o.log.error({ err }, 'process.shutdown_failed');
        void runShutdownHooks().finally(() => process.exit(1));
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
