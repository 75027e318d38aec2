import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { NatsManager } from '../nats/connection.js';
import { RetryDelays, sleep, type BackoffSettings } from '../faults/backoff.js';
import { withTimeout } from './pause.js';

export interface PullLoopOptions {
  nats: NatsManager;
  stream: string;
  durable: string;
  /** How many more messages the client may hold now (window minus what it holds). */
  room: () => number;
  /** Don't pull fewer than this: under load, wait for a useful amount of room. */
  minPull: number;
  /** Resolves when pulling may go on (the consumer is not paused). */
  whenOpen: () => Promise<void>;
  onMessage: (msg: JsMsg) => void;
  /** How long one pull request waits on the server (≥ 1000 ms). */
  expiresMs: number;
  backoff: BackoffSettings;
  log: Pick<Logger, 'info' | 'warn'>;
  signal: AbortSignal;
}

/**
 * Pulls exactly as many messages as the client may hold — one pull request at a time, for the
 * room left in the window — so nothing waits unseen in a client buffer: everything delivered is
 * handed to onMessage at once, where it is leased (kept alive) until settled. nats.js consume()
 * refills its buffer as messages *arrive*, not as they are handled, so a slow batch left an
 * unbounded, unheartbeated backlog that the server redelivered with inflated counts.
 *
 * Nothing is pulled while the consumer is paused. Stopping ends the open pull request: the server
 * drops pull requests whose reply subject lost its interest (checked on 2.9.10 and 2.15), so no
 * message is sent into the void.
 */
export class PullLoop {
  #wake: (() => void) | undefined;
  #iter: ConsumerMessages | undefined;
  #done: Promise<void> | undefined;
  readonly #delays: RetryDelays;

  constructor(private readonly o: PullLoopOptions) {
    this.#delays = new RetryDelays(o.backoff);
    o.signal.addEventListener('abort', () => this.wake(), { once: true });
  }

  start(): void {
    this.#done ??= this.#run();
  }

  /** Room changed (a message was settled) or the gate opened: look again. */
  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Ends the open pull request and the loop; call after aborting the signal. Idempotent. */
  async stop(): Promise<void> {
    const conn = this.o.nats.connection();
    this.#iter?.stop();
    this.wake();
    await this.#done;
    // Until the server has the unsubscribe, it may still hand a message to the dead pull request
    // (to come back only after its ack wait, one delivery spent): flush it out, but never wait
    // long for a server that is away.
    if (conn && this.o.nats.isConnected()) await withTimeout(conn.nc.flush(), 2_000, 'NATS flush').catch(() => undefined);
  }

  async #run(): Promise<void> {
    const { signal, stream, durable, log } = this.o;
    let consumer: Consumer | undefined;
    let consumerOn: NatsConnection | undefined;
    while (!signal.aborted) {
      await this.o.whenOpen();
      if (signal.aborted) break;
      const room = this.o.room();
      if (room < this.o.minPull) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      try {
        const conn = await untilAborted(this.o.nats.ready(), signal);
        if (!conn) break;
        if (!consumer || consumerOn !== conn.nc) {
          consumer = await conn.js.consumers.get(stream, durable);
          consumerOn = conn.nc;
          // stop() may have come while we waited for the server: never start a pull after it.
          if (signal.aborted) break;
          log.info({ stream, consumer: durable }, 'consumer.started');
        }
        const iter = await consumer.fetch({ max_messages: room, expires: this.o.expiresMs });
        this.#iter = iter;
        if (signal.aborted) {
          iter.stop();
          break;
        }
        for await (const msg of iter) this.o.onMessage(msg);
        this.#delays.reset();
      } catch (err) {
        if (signal.aborted) break;
        // The consumer may not exist yet (the operator creates it), the stream may be moving
        // between nodes, or NATS is away: look the consumer up again after a pause.
        consumer = undefined;
        const delay = this.#delays.next();
        log.warn({ err, stream, consumer: durable, retryInMs: delay }, 'consumer.unavailable');
        await sleep(delay, signal);
      } finally {
        this.#iter = undefined;
      }
    }
  }
}

/** p's value, or undefined as soon as the signal aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
