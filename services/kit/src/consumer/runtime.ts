import type { JsMsg } from '@nats-io/jetstream';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { Linger } from '../batching/linger.js';
import type { Db } from '../db/db.js';
import type { Metrics } from '../metrics.js';
import type { NatsManager } from '../nats/connection.js';
import type { OutboxRelay } from '../outbox/relay.js';
import { RetryDelays, sleep, type BackoffSettings } from '../faults/backoff.js';
import type { Dependency } from '../faults/classify.js';
import { parseDuration, type ConsumerSpec, type Names } from '../topology.js';
import { copyToDeadLetter } from './dead-letter.js';
import { classifyFailure, errorMessage, type Failure } from './failure.js';
import type { Handlers } from './contract.js';
import { declaredHandlers, type DeclaredHandler } from './handlers.js';
import { effectiveAckWait, LeaseKeeper } from './leases.js';
import { consumerPausedGauge } from './metrics.js';
import { PauseGate, withTimeout, type PauseState } from './pause.js';
import { PullLoop } from './pull-loop.js';
import { runTransaction, type Committed, type TransactionOptions } from './transaction.js';
import { decode, prepare, within, type Decoded, type PrepareOptions, type Traced, type Work } from './work.js';

export interface EventConsumerOptions {
  spec: ConsumerSpec;
  names: Names;
  db: Db;
  nats: NatsManager;
  log: Logger;
  metrics?: Metrics;
  relay?: OutboxRelay;
  handlers: Handlers;
  /** In-process limit on work in flight: batches plus after-commit calls (JetStream's maxAckPending bounds the rest). */
  concurrency?: number;
  /**
   * Messages handled in one transaction when they queue up (default 256; 1 = one transaction a
   * message). Under light load a batch is one message; under load one BEGIN/COMMIT, one
   * processed_events insert and one outbox insert serve many messages. Each transaction costs
   * round trips and a WAL flush whatever its size, and one batch runs at a time: 256 handled a
   * no-op consumer's backlog at 1.4-1.7x the rate of 64 (and ~40 % less CPU per message).
   */
  batchSize?: number;
  /** Batches running at once (default 1: handlers of one consumer never hold locks against each other). */
  workers?: number;
  /**
   * How long a message arriving at an idle consumer waits for company before its batch starts
   * (default 0). Under light load every message is otherwise its own transaction — BEGIN, the
   * processed_events insert, the outbox insert, COMMIT and its WAL flush, a relay round — and
   * those cost more than the handler; a few milliseconds let one transaction serve several.
   * Messages that queued behind a running batch never wait: they have waited already.
   */
  lingerMs?: number;
  /**
   * Messages the recent arrival rate must predict within `lingerMs` for the wait to happen
   * (default 0.5): at rest a lone message is handled at once, since nobody is coming to share its
   * transaction. 0 waits whatever the rate.
   */
  lingerMinExpected?: number;
  /** `type` or `type@version` entries; a version outside this set is dead-lettered. */
  accepts?: ReadonlySet<string>;
  /** How often pending / ack-pending / DLQ depth gauges are read from JetStream (default 5 s). */
  statsIntervalMs?: number;
  /**
   * How long the handlers of one transaction (a batch, or one message) may run (default 30 s).
   * Then the work is abandoned and rolled back, the worker freed, and the message nak'ed with
   * delay — or held, if the database does not answer a probe either.
   */
  handlerTimeoutMs?: number;
  /**
   * Most messages the client holds at once — running, queued, held while paused — each kept alive
   * until settled (default max(2 · batchSize · workers, 64)). Nothing is pulled beyond it.
   */
  prefetch?: number;
  /** How a paused consumer asks whether a dependency is back; defaults: database → ping, nats → consumer info, else retry the work. */
  probes?: Partial<Record<Dependency, () => Promise<void>>>;
  /** Backoff of the probes while paused (default 250 ms doubling to 10 s, jittered). */
  pauseBackoff?: BackoffSettings;
  /** One probe's time limit (default 5 s). */
  probeTimeoutMs?: number;
  /** How long one pull request waits on the server (default 5 s; at least 1 s). */
  pullExpiresMs?: number;
}

// A lock/statement timeout, deadlock or serialization failure is tried again here, holding the
// message, before it counts as the message's failure.
const CONTENTION_ATTEMPTS = 3;

/**
 * A durable pull consumer whose handlers are idempotent by construction: each runs in a DB
 * transaction that first records the event id in processed_events, so a redelivered event is
 * acked without running its effects again, and its outgoing events go through the outbox in the
 * same transaction. Poison messages are copied to the dead-letter subject before term(); a
 * message failing on its last allowed delivery goes there too.
 *
 * Faults (docs/faults.md, "Consumer faults"):
 * - A dependency that is away (database unreachable or terminated, NATS timeouts) is not the
 *   message's fault: the consumer pauses — pulls and starts nothing — holds what it has, probes
 *   the dependency on a backoff and resumes when it answers. No delivery is spent on it.
 * - Everything the client holds is kept alive with working() (leases.ts), and it holds no more
 *   than it pulled for (pull-loop.ts): nothing is redelivered behind its back.
 * - A handler outliving its deadline is abandoned and rolled back (transaction.ts); the worker
 *   goes on with the next messages.
 *
 * Messages that queue up are handled in batches, one transaction a batch; if the batch fails,
 * each of its messages is retried alone, so one failing message cannot hold the others back and
 * is the only one nak'ed or dead-lettered.
 */
export class EventConsumer {
  readonly #concurrency: number;
  readonly #batchSize: number;
  readonly #workers: number;
  readonly #linger: Linger;
  /** When the oldest queued message arrived (performance.now()), for the linger. */
  #queuedSince = 0;
  /** Whether the messages queued since #queuedSince wait for company: decided as the first arrives. */
  #lingerThisBatch = false;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #maxDeliver: number;
  readonly #ackWaitMs: number;
  readonly #backoffMs: number[];
  readonly #dlqSubject: string;
  readonly #handlers: Map<string, DeclaredHandler>;
  readonly #tx: TransactionOptions;
  readonly #probeTimeoutMs: number;
  readonly #abort = new AbortController();
  readonly #leases: LeaseKeeper;
  readonly #gate: PauseGate;
  readonly #pull: PullLoop;
  /** Messages in hand waiting for a worker, in delivery order (held ones go back to the front). */
  #queue: JsMsg[] = [];
  /**
   * What held messages say, decoded as they arrived (#receive) — by the time their batch starts
   * that is done, mostly while the batch before them waited on the database — until settled.
   */
  readonly #decoded = new Map<JsMsg, Decoded>();
  readonly #prepareOptions: PrepareOptions;
  #batches = 0;
  readonly #inflight = new Set<Promise<void>>();
  #started = false;
  #pausedOn: Dependency | undefined;
  #stopping: Promise<void> | undefined;
  #statsTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly o: EventConsumerOptions) {
    const { spec, log } = o;
    this.#handlers = declaredHandlers(spec.durableName, o.handlers);
    this.#concurrency = o.concurrency ?? 32;
    this.#batchSize = Math.max(1, o.batchSize ?? 256);
    this.#workers = Math.max(1, o.workers ?? 1);
    this.#linger = new Linger(o.lingerMs, o.lingerMinExpected);
    this.#maxDeliver = spec.maxDeliver ?? 5;
    this.#ackWaitMs = parseDuration(spec.ackWait ?? '30s');
    this.#backoffMs = (spec.backoff ?? ['1s']).map(parseDuration);
    this.#dlqSubject = spec.deadLetter?.subject ?? o.names.dlqSubject(spec.streamName, spec.durableName);
    this.#tx = { db: o.db, names: o.names, durable: spec.durableName, log, deadlineMs: o.handlerTimeoutMs ?? 30_000 };
    this.#probeTimeoutMs = o.probeTimeoutMs ?? 5_000;
    this.#prepareOptions = { names: o.names, durable: spec.durableName, handlers: this.#handlers, accepts: o.accepts };

    // The server's ack waits: backoff[n-1] for delivery n when the consumer has a backoff list.
    const serverBackoff = spec.backoff?.length ? this.#backoffMs : [];
    const shortest = serverBackoff.length ? Math.min(...serverBackoff) : this.#ackWaitMs;
    this.#leases = new LeaseKeeper(
      (n) => effectiveAckWait(this.#ackWaitMs, serverBackoff, n),
      shortest,
      (err) => log.debug({ err, consumer: spec.durableName }, 'consumer.heartbeat_failed'),
    );
    this.#gate = new PauseGate({
      consumer: spec.durableName,
      probe: (d) => this.#probe(d),
      probeTimeoutMs: this.#probeTimeoutMs,
      backoff: o.pauseBackoff ?? { initialMs: 250, maxMs: 10_000 },
      log,
      signal: this.#abort.signal,
      onChange: (state) => this.#pauseChanged(state),
    });
    const window = o.prefetch ?? Math.max(this.#batchSize * this.#workers * 2, 64);
    this.#pull = new PullLoop({
      nats: o.nats,
      stream: spec.streamName,
      durable: spec.durableName,
      room: () => window - this.#leases.size,
      minPull: Math.max(1, Math.floor(window / 4)),
      whenOpen: () => this.#gate.whenOpen(),
      onMessage: (msg) => this.#receive(msg),
      expiresMs: Math.max(1000, o.pullExpiresMs ?? 5_000),
      backoff: { initialMs: 500, maxMs: 10_000 },
      log,
      signal: this.#abort.signal,
    });
  }

  get durable(): string {
    return this.o.spec.durableName;
  }

  /** Which dependency the consumer is paused on, since when, and why; undefined while running. */
  get paused(): PauseState | undefined {
    return this.#gate.state;
  }

  /** Messages the client holds now (running, queued or held), each kept alive until settled. */
  get held(): number {
    return this.#leases.size;
  }

  /** Begins consuming once NATS is connected; returns at once. */
  start(): void {
    if (this.#started || this.#stopping) return;
    this.#started = true;
    this.#pull.start();
    if (this.o.metrics) {
      this.#statsTimer = setInterval(() => void this.refreshStats(), this.o.statsIntervalMs ?? 5000);
      this.#statsTimer.unref();
    }
  }

  /**
   * Reads the consumer's pending / ack-pending counts and its dead-letter subject's depth from
   * JetStream into the gauges. Periodic while running; exposed for tests. Failures (not
   * connected, consumer or DLQ stream not created yet) leave the last values.
   */
  async refreshStats(): Promise<void> {
    const { metrics, spec, names, log } = this.o;
    const conn = this.o.nats.connection();
    if (!metrics || !conn || !this.o.nats.isConnected()) return;
    try {
      const info = await conn.jsm.consumers.info(spec.streamName, spec.durableName);
      metrics.consumerPending.set({ consumer: spec.durableName }, info.num_pending);
      metrics.consumerAckPending.set({ consumer: spec.durableName }, info.num_ack_pending);
    } catch (err) {
      log.debug({ err, consumer: spec.durableName }, 'consumer.stats_failed');
    }
    try {
      const dlq = await conn.jsm.streams.info(names.stream('DLQ'), { subjects_filter: this.#dlqSubject });
      metrics.dlqDepth.set({ consumer: spec.durableName, subject: this.#dlqSubject }, dlq.state.subjects?.[this.#dlqSubject] ?? 0);
    } catch (err) {
      log.debug({ err, consumer: spec.durableName }, 'consumer.dlq_stats_failed');
    }
  }

  /**
   * Stops pulling and lets in-flight handlers finish and ack (or nak); what is queued is handled
   * too. While paused on a dependency, what the client holds is given back with nak() instead, so
   * another replica can take it at once (that costs each one delivery — see docs/faults.md).
   * Idempotent.
   */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#stop());
  }

  async #stop(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#statsTimer);
    clearTimeout(this.#lingerTimer);
    await this.#pull.stop();
    while (this.#inflight.size || (this.#queue.length && !this.#gate.paused)) {
      this.#pump();
      await Promise.allSettled([...this.#inflight]);
    }
    const held = this.#leases.held();
    if (held.length)
      this.o.log.info(
        { consumer: this.durable, count: held.length, dependency: this.#gate.state?.dependency },
        'consumer.released_on_stop',
      );
    for (const msg of held) this.#nak(msg);
    this.#queue = [];
    this.#decoded.clear();
    this.#leases.stop();
    // The naks are on their way before the connection is drained or the process exits.
    const conn = this.o.nats.connection();
    if (held.length && conn && this.o.nats.isConnected()) await withTimeout(conn.nc.flush(), 2_000, 'NATS flush').catch(() => undefined);
  }

  #receive(msg: JsMsg): void {
    this.#leases.add(msg);
    try {
      this.#decoded.set(msg, decode(msg, this.#prepareOptions));
    } catch {
      // Not the message's fault and not ours to judge here: its batch decodes it again and
      // fails there, as any unexpected error in a batch does.
    }
    if (this.#linger.ms > 0) {
      const now = performance.now();
      const wait = this.#linger.arrive(now);
      // Only the first message of a batch decides; those queuing behind it count towards the rate.
      if (this.#queue.length === 0) {
        this.#queuedSince = now;
        this.#lingerThisBatch = wait;
      }
    }
    this.#queue.push(msg);
    this.#pump();
  }

  /** Starts batches while there is queued work, a free worker and no pause. */
  #pump(): void {
    while (!this.#gate.paused && this.#queue.length && this.#batches < this.#workers && this.#inflight.size < this.#concurrency) {
      if (this.#lingering()) return;
      const msgs = this.#queue.splice(0, this.#batchSize);
      this.#batches++;
      this.#track(
        this.#runBatch(msgs)
          .catch((err: unknown) => {
            // #runBatch settles every expected failure itself; anything else is a bug that must
            // not become an unhandled rejection (which ends the process): log it, retry later.
            this.o.log.error({ err, count: msgs.length }, 'consumer.unexpected_error');
            for (const m of msgs) if (this.#leases.has(m) && !this.#queue.includes(m)) this.#nak(m, 5000);
          })
          .finally(() => this.#batches--),
      );
    }
  }

  /**
   * True while a short batch should wait for more (lingerMs, when the recent rate makes company
   * likely); a timer pumps again when the oldest message has waited long enough. Never while
   * stopping: stop() drains what is queued.
   */
  #lingering(): boolean {
    if (!this.#lingerThisBatch || this.#queue.length >= this.#batchSize || this.#stopping) return false;
    const left = this.#queuedSince + this.#linger.ms - performance.now();
    if (left <= 0) return false;
    this.#lingerTimer ??= setTimeout(() => {
      this.#lingerTimer = undefined;
      this.#pump();
    }, left);
    return true;
  }

  /** Work in flight (batches, after-commit calls); when one ends, a waiting message may start. */
  #track(p: Promise<void>): void {
    const t: Promise<void> = p.finally(() => {
      this.#inflight.delete(t);
      this.#pump();
    });
    this.#inflight.add(t);
  }

  async #runBatch(msgs: JsMsg[]): Promise<void> {
    const works: Work[] = [];
    for (const [i, msg] of msgs.entries()) {
      const p = prepare(msg, this.#prepareOptions, this.#decoded.get(msg));
      if (p.kind === 'work') {
        works.push(p.work);
      } else if (p.kind === 'ignore') {
        await within(p.traced, async () => {
          this.#ack(msg);
          this.o.metrics?.consumed.inc({ subject: msg.subject, result: 'ignored' });
          if (p.reason) this.o.log.debug({ subject: msg.subject, seq: msg.seq }, p.reason);
        });
        p.traced.span.end();
      } else {
        const away = await this.#deadLetter(p.traced, p.reason, 'poison');
        if (away) return this.#hold([...works, p.traced], away, msgs.slice(i + 1));
      }
    }
    if (works.length === 0) return;
    if (works.length > 1) {
      try {
        return this.#committed(works, await runTransaction(this.#tx, works));
      } catch (err) {
        const f = await this.#judge(classifyFailure(err), works[0]!.msg.subject);
        if (f.kind === 'dependency') return this.#hold(works, f);
        this.o.log.debug({ err, count: works.length, kind: f.kind }, 'consumer.batch_failed_retrying_one_by_one');
      }
    }
    for (const [i, w] of works.entries()) {
      const away = await this.#runOne(w);
      if (away) return this.#hold(works.slice(i), away);
    }
  }

  /**
   * One message in its own transaction; a failure it caused is nak'ed with backoff or
   * dead-lettered. Returns the dependency failure if it must be held.
   */
  async #runOne(w: Work): Promise<Extract<Failure, { kind: 'dependency' }> | undefined> {
    const contention = new RetryDelays({ initialMs: 50, maxMs: 1000 });
    for (;;) {
      try {
        this.#committed([w], await runTransaction(this.#tx, [w]));
        return undefined;
      } catch (err) {
        const f = await this.#judge(classifyFailure(err), w.msg.subject);
        if (f.kind === 'dependency') return f;
        if (f.kind === 'contention' && contention.attempts + 1 < CONTENTION_ATTEMPTS && !this.#abort.signal.aborted) {
          const delay = contention.next();
          this.o.log.debug(
            { err: errorMessage(err), subject: w.msg.subject, seq: w.msg.seq, retryInMs: delay },
            'consumer.contention_retry',
          );
          await sleep(delay, this.#abort.signal);
          continue;
        }
        return this.#failed(w, f);
      }
    }
  }

  /**
   * A deadline is the message's fault only if the database still answers: a stalled or
   * unreachable database makes every handler overrun, and that must pause, not spend deliveries.
   */
  async #judge(f: Failure, subject: string): Promise<Failure> {
    if (f.kind !== 'deadline') return f;
    this.o.metrics?.failed.inc({ subject, kind: 'deadline' });
    try {
      await withTimeout(this.#probe('database'), this.#probeTimeoutMs, 'database probe');
      return f;
    } catch (err) {
      return { kind: 'dependency', dependency: 'database', error: err };
    }
  }

  /** A failure the message caused (or poison): nak with backoff, or dead-letter on the last delivery. */
  async #failed(w: Work, f: Exclude<Failure, { kind: 'dependency' }>): Promise<Extract<Failure, { kind: 'dependency' }> | undefined> {
    const { metrics, log } = this.o;
    const { msg, deliveryCount } = w;
    const err = f.error;
    metrics?.handlerDuration.observe({ subject: msg.subject }, (performance.now() - w.started) / 1000);
    if (f.kind === 'poison') return this.#deadLetter(w, errorMessage(err), 'poison');
    metrics?.failed.inc({ subject: msg.subject, kind: 'handler' });
    w.span.recordException(err instanceof Error ? err : new Error(String(err)));
    w.span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
    if (deliveryCount >= this.#maxDeliver) {
      return this.#deadLetter(w, `handler failed on delivery ${deliveryCount} of ${this.#maxDeliver}: ${errorMessage(err)}`, 'max_deliver');
    }
    const delay = this.#backoffMs[Math.min(deliveryCount - 1, this.#backoffMs.length - 1)] ?? 1000;
    await within(w, async () =>
      log.warn({ err, kind: f.kind, subject: msg.subject, seq: msg.seq, deliveryCount, retryInMs: delay }, 'consumer.handler_failed'),
    );
    this.#nak(msg, delay);
    w.span.end();
    return undefined;
  }

  /** Acks committed work, ends spans, starts after-commit calls in the background. */
  #committed(works: Work[], { handled, after, events }: Committed): void {
    const { metrics, log } = this.o;
    this.o.relay?.committed(events);
    metrics?.consumerBatchSize.observe({ consumer: this.durable }, works.length);
    for (const w of works) {
      this.#ack(w.msg);
      metrics?.consumed.inc({ subject: w.msg.subject, result: handled.has(w) ? 'handled' : 'duplicate' });
      metrics?.handlerDuration.observe({ subject: w.msg.subject }, (performance.now() - w.started) / 1000);
      w.span.end();
    }
    this.#gate.succeeded();
    for (const { w, fn } of after) {
      this.#track(within(w, fn).catch((err: unknown) => log.error({ err, eventId: w.event.id }, 'consumer.after_commit_failed')));
    }
  }

  /**
   * A dependency is away: these messages go back to the front of the queue, still leased (kept
   * alive, their delivery not spent), then `rest` behind them; the consumer pauses until a probe
   * says the dependency is back.
   */
  #hold(traced: Traced[], f: Extract<Failure, { kind: 'dependency' }>, rest: JsMsg[] = []): void {
    for (const t of traced) {
      t.span.addEvent('held', { dependency: f.dependency, reason: errorMessage(f.error) });
      t.span.end();
      this.o.metrics?.failed.inc({ subject: t.msg.subject, kind: 'dependency' });
    }
    this.#queue.unshift(...traced.map((t) => t.msg), ...rest);
    // They have waited already: on resume they go at once.
    this.#queuedSince = 0;
    this.#gate.pause(f.dependency, f.error);
  }

  /** Copies to the DLQ, then term(); returns the NATS failure if the copy could not be made (then the message is held). */
  async #deadLetter(
    t: Traced,
    reason: string,
    kind: 'poison' | 'max_deliver',
  ): Promise<Extract<Failure, { kind: 'dependency' }> | undefined> {
    const { log, metrics, spec } = this.o;
    const { msg } = t;
    try {
      await copyToDeadLetter(
        { nats: this.o.nats, dlqSubject: this.#dlqSubject, stream: spec.streamName, durable: spec.durableName },
        msg,
        reason,
      );
    } catch (err) {
      log.error({ err, subject: msg.subject, seq: msg.seq }, 'consumer.dead_letter_failed');
      const f = classifyFailure(err);
      return f.kind === 'dependency' ? f : { kind: 'dependency', dependency: 'nats', error: err };
    }
    await within(t, async () => {
      trace.getActiveSpan()?.addEvent('dead_lettered', { reason, 'messaging.destination.name': this.#dlqSubject });
      // Plain term(): nats-server 2.9 does not parse `+TERM <reason>` and leaves the message
      // ack-pending until it is redelivered (measured: still unacked after 3 s, gone only after
      // max_deliver). The reason is already on the DLQ copy (Dlq-Reason).
      this.#term(msg);
      metrics?.deadLettered.inc({ consumer: spec.durableName, reason: kind });
      metrics?.consumed.inc({ subject: msg.subject, result: 'dead_lettered' });
      log.warn({ subject: msg.subject, seq: msg.seq, reason, dlq: this.#dlqSubject }, 'consumer.dead_lettered');
    });
    t.span.end();
    return undefined;
  }

  #probe(dependency: Dependency): Promise<void> {
    const custom = this.o.probes?.[dependency];
    if (custom) return custom();
    switch (dependency) {
      case 'database':
        return this.o.db.ping();
      case 'nats':
        return (async () => {
          const conn = this.o.nats.connection();
          if (!conn || !this.o.nats.isConnected()) throw new Error('NATS not connected');
          await conn.jsm.consumers.info(this.o.spec.streamName, this.o.spec.durableName);
        })();
      default:
        // Nothing here can ask it: retrying the held work (after this backoff) is the probe.
        return Promise.resolve();
    }
  }

  #pauseChanged(state: PauseState | undefined): void {
    const gauge = this.o.metrics && consumerPausedGauge(this.o.metrics.registry);
    if (state) gauge?.set({ consumer: this.durable, dependency: state.dependency }, 1);
    else if (this.#pausedOn) gauge?.set({ consumer: this.durable, dependency: this.#pausedOn }, 0);
    this.#pausedOn = state?.dependency;
    if (!state) {
      this.#pump();
      this.#pull.wake();
    }
  }

  #ack(msg: JsMsg): void {
    this.#settle(msg, () => msg.ack());
  }

  #nak(msg: JsMsg, delay?: number): void {
    this.#settle(msg, () => msg.nak(delay));
  }

  #term(msg: JsMsg): void {
    this.#settle(msg, () => msg.term());
  }

  #settle(msg: JsMsg, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      // A connection closed for good: the server redelivers the message on the next one.
      this.o.log.debug({ err, subject: msg.subject, seq: msg.seq }, 'consumer.settle_failed');
    }
    this.#leases.release(msg);
    this.#decoded.delete(msg);
    this.#pull.wake();
  }
}
