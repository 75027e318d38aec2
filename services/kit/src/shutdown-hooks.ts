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
