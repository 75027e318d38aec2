import type { Logger } from 'pino';
import { RetryDelays, sleep, type BackoffSettings } from '../faults/backoff.js';
import type { Dependency } from '../faults/classify.js';
import { errorMessage } from './failure.js';

export interface PauseState {
  dependency: Dependency;
  since: Date;
  reason: string;
  probes: number;
}

export interface PauseGateOptions {
  /** Resolves when the dependency answers again; rejects (or times out) while it is away. */
  probe: (dependency: Dependency) => Promise<void>;
  /** Give up on one probe after this long (a stopped server may never answer). */
  probeTimeoutMs: number;
  backoff: BackoffSettings;
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** The consumer's stop: ends probing. */
  signal: AbortSignal;
  consumer: string;
  onChange?: (state: PauseState | undefined) => void;
}

/**
 * The consumer's pause while a dependency is away: nothing new is pulled or started, what is
 * held stays held (LeaseKeeper), and a probe of that dependency runs on cockatiel's exponential
 * backoff until it answers; then work resumes where it stopped.
 *
 * The backoff is not restarted by a resume but by real progress (succeeded()): a dependency the
 * runtime cannot probe (the payment gateway) is probed by retrying the held work itself, and each
 * failing retry pauses again further along the curve.
 */
export class PauseGate {
  #state: PauseState | undefined;
  #waiters: Array<() => void> = [];
  readonly #delays: RetryDelays;

  constructor(private readonly o: PauseGateOptions) {
    this.#delays = new RetryDelays(o.backoff);
    o.signal.addEventListener('abort', () => this.#wakeAll(), { once: true });
  }

  get state(): PauseState | undefined {
    return this.#state;
  }

  get paused(): boolean {
    return this.#state !== undefined;
  }

  /** Pauses (once: a pause in progress keeps its probe) and starts probing. */
  pause(dependency: Dependency, cause: unknown): void {
    if (this.#state) return;
    this.#state = { dependency, since: new Date(), reason: errorMessage(cause), probes: 0 };
    this.o.log.warn({ consumer: this.o.consumer, dependency, err: this.#state.reason }, 'consumer.paused');
    this.o.onChange?.(this.#state);
    void this.#probeUntilBack(this.#state);
  }

  /** Work went through: the next pause starts at the beginning of the backoff curve. */
  succeeded(): void {
    this.#delays.reset();
  }

  /** Resolves once the gate is open (or the consumer stops). */
  whenOpen(): Promise<void> {
    if (!this.#state || this.o.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async #probeUntilBack(state: PauseState): Promise<void> {
    const { signal, log, consumer } = this.o;
    while (!signal.aborted) {
      await sleep(this.#delays.next(), signal);
      if (signal.aborted) return;
      state.probes++;
      try {
        await withTimeout(this.o.probe(state.dependency), this.o.probeTimeoutMs, `${state.dependency} probe`);
        break;
      } catch (err) {
        log.debug({ consumer, dependency: state.dependency, probes: state.probes, err: errorMessage(err) }, 'consumer.probe_failed');
      }
    }
    if (signal.aborted) return;
    this.#state = undefined;
    log.info(
      { consumer, dependency: state.dependency, pausedMs: Date.now() - state.since.getTime(), probes: state.probes },
      'consumer.resumed',
    );
    this.o.onChange?.(undefined);
    this.#wakeAll();
  }

  #wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Rejects with a timeout error if p has not settled within ms (p keeps running; its outcome is ignored). */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  p.catch(() => undefined);
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
