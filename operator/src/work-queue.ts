import { RetryDelays } from '@orderflow/kit';

/**
 * A work queue in the client-go sense: keys, not objects, are queued, so a burst of events for one
 * resource collapses into one reconcile; a key is never processed by two workers at once (an
 * event during processing marks it dirty and it runs again afterwards); failures are requeued
 * with a per-key exponential backoff (cockatiel's, through the kit) that resets on success.
 */
export interface WorkQueueOptions {
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called with the queue depth whenever it changes (for the metrics gauge). */
  onDepth?: (depth: number) => void;
}

/** What a handler asks for: done, or run again after a backoff. */
export type HandlerResult = { requeue: false } | { requeue: true; error?: unknown };

export interface WorkQueue {
  add(key: string): void;
  /** Requeue with this key's backoff (grows on each failure until the key is handled without a requeue). */
  addRateLimited(key: string): void;
  start(): void;
  /** Stops taking work and waits for the keys in progress; safe to call twice. */
  stop(): Promise<void>;
}

export function createWorkQueue(handle: (key: string) => Promise<HandlerResult>, opts: WorkQueueOptions = {}): WorkQueue {
  const workers = opts.workers ?? 2;
  const base = opts.baseDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 60_000;
  const queue: string[] = [];
  const queued = new Set<string>();
  const active = new Set<string>();
  const dirty = new Set<string>();
  const failures = new Map<string, RetryDelays>();
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let started = false;

  const report = (): void => opts.onDepth?.(queue.length);

  function add(key: string): void {
    if (active.has(key)) {
      dirty.add(key);
      return;
    }
    if (queued.has(key)) return;
    queued.add(key);
    queue.push(key);
    report();
    pump();
  }

  function pump(): void {
    if (!started) return;
    while (running.size < workers) {
      const key = queue.shift();
      if (key === undefined) break;
      queued.delete(key);
      report();
      active.add(key);
      const p = process(key).finally(() => {
        running.delete(p);
        active.delete(key);
        if (dirty.delete(key)) add(key);
        pump();
      });
      running.add(p);
    }
  }

  async function process(key: string): Promise<void> {
    let r: HandlerResult;
    try {
      r = await handle(key);
    } catch (error) {
      r = { requeue: true, error };
    }
    if (r.requeue) addRateLimited(key);
    else failures.delete(key);
  }

  function addRateLimited(key: string): void {
    if (!started) return;
    let delays = failures.get(key);
    if (!delays) failures.set(key, (delays = new RetryDelays({ initialMs: base, maxMs: max })));
    const delay = delays.next();
    clearTimeout(timers.get(key));
    const t = setTimeout(() => {
      timers.delete(key);
      add(key);
    }, delay);
    t.unref();
    timers.set(key, t);
  }

  return {
    add,
    addRateLimited,
    start() {
      if (started) return;
      started = true;
      pump();
    },
    async stop() {
      started = false;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      await Promise.all([...running]);
    },
  };
}
