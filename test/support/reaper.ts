/**
 * Nothing a test starts may outlive it. Harness pieces that own processes (platform children,
 * NATS nodes, a private Postgres) register here with an async `dispose` (the orderly way) and a
 * synchronous `kill` (the last resort). `disposeAll()` is for afterEach/afterAll — it also covers
 * a test that vitest timed out while its body still runs — and the process hooks (exit, SIGINT,
 * SIGTERM, SIGHUP) kill whatever is left when the test process itself goes away.
 */
export interface Reapable {
  name: string;
  dispose(): Promise<void>;
  /** Synchronous: may run inside process.on('exit'). */
  kill(): void;
}

const live = new Set<Reapable>();
let hooked = false;

/** Kills a whole process group (a child spawned with `detached: true` leads its own). */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function killAllSync(): void {
  for (const r of live) {
    try {
      r.kill();
    } catch {
      // keep killing the others
    }
  }
  live.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killAllSync();
      // Keep the signal's usual effect when nobody else handles it.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

/** Registers a resource; returns the function that forgets it (call it once disposed). */
export function track(r: Reapable): () => void {
  hook();
  live.add(r);
  return () => void live.delete(r);
}

/**
 * Disposes every live resource, each failure contained and each given `graceMs` before it is
 * killed anyway (a dispose that hangs must not keep the others alive).
 */
export async function disposeAll(graceMs = 30_000): Promise<void> {
  const all = [...live];
  await Promise.allSettled(all.map((r) => Promise.race([r.dispose(), new Promise((res) => setTimeout(res, graceMs).unref())])));
  for (const r of all) {
    try {
      r.kill();
    } catch {
      // gone
    }
    live.delete(r);
  }
}
