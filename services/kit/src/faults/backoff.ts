import { ExponentialBackoff, type IBackoff } from 'cockatiel';

export interface BackoffSettings {
  initialMs: number;
  maxMs: number;
}

/**
 * Successive retry delays from cockatiel's exponential backoff (decorrelated jitter), for loops
 * that must sleep in a way stop() can cut short (cockatiel's retry policy sleeps uninterruptibly).
 * reset() after a success starts the curve again.
 */
export class RetryDelays {
  readonly #factory: ExponentialBackoff<unknown>;
  #current: IBackoff<unknown> | undefined;
  #attempts = 0;

  constructor(settings: BackoffSettings) {
    this.#factory = new ExponentialBackoff({ initialDelay: settings.initialMs, maxDelay: settings.maxMs });
  }

  /** Failures since the last reset(). */
  get attempts(): number {
    return this.#attempts;
  }

  next(): number {
    this.#current = this.#current ? this.#current.next(undefined) : this.#factory.next();
    this.#attempts++;
    return this.#current.duration;
  }

  reset(): void {
    this.#current = undefined;
    this.#attempts = 0;
  }
}

/** Resolves after ms, or at once when the signal aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
