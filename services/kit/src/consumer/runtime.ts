import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Db, Sql } from '../db/db.js';
import type { Metrics } from '../metrics.js';
import type { NatsManager } from '../nats/connection.js';
import type { OutboxRelay } from '../outbox/relay.js';
import { enqueue } from '../outbox/store.js';
import { decodeEvent, makeEvent, PoisonMessageError, type IncomingEvent, type OutgoingEvent } from '../events/envelope.js';
import { EVENT_SCHEMAS, type DefaultVersion, type EventData, type EventType, type EventVersion } from '../events/schemas.js';
import { adaptToVersion } from '../events/upcast.js';
import { parseDuration, type ConsumerSpec, type Names } from '../topology.js';
import { publishDeadLetter } from '../dlq/dead-letter.js';
import { withWorkContext } from '../context.js';
import { extractTraceContext, injectTraceHeaders, SpanKind, tracer } from '../tracing/propagation.js';
import { context, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';

export interface HandlerContext<T extends EventType = EventType, V extends EventVersion<T> = DefaultVersion<T>> {
  event: IncomingEvent<T, V>;
  /** The transaction the processed-event record lives in: do every state change here. */
  sql: Sql;
  log: Logger;
  deliveryCount: number;
  /** Queues an event into the outbox, in this same transaction. */
  emit<E extends EventType>(type: E, data: EventData<E>): void;
  /** Runs after the transaction commits (e.g. a call that must not hold the transaction). */
  afterCommit(fn: () => Promise<void>): void;
}

export type Handler<T extends EventType = EventType, V extends EventVersion<T> = DefaultVersion<T>> = (ctx: HandlerContext<T, V>) => Promise<void>;

/**
 * A handler that declares the one version of its event type it is written for, e.g.
 * `{ version: 'v2', handle }`. A bare function handles v1. The handler sees only its version:
 * the other versions of the same event (dual publishing) are acked and ignored, older ones with
 * no twin are upcast, the rest dead-lettered (events/upcast.ts).
 */
export type VersionedHandler<T extends EventType> = { [V in EventVersion<T>]: { version: V; handle: Handler<T, V> } }[EventVersion<T>];

export type Handlers = { [T in EventType]?: Handler<T> | VersionedHandler<T> };

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
   * Messages handled in one transaction when they queue up (default 64; 1 = one transaction a
   * message). Under light load a batch is one message; under load one BEGIN/COMMIT, one
   * processed_events insert and one outbox insert serve many messages.
   */
  batchSize?: number;
  /** Batches running at once (default 1: handlers of one consumer never hold locks against each other). */
  workers?: number;
  /** `type` or `type@version` entries; a version outside this set is dead-lettered. */
  accepts?: ReadonlySet<string>;
  /** How often pending / ack-pending / DLQ depth gauges are read from JetStream (default 5 s). */
  statsIntervalMs?: number;
}

/** A decoded message waiting for its handler, with its open CONSUMER span. */
interface Work {
  msg: JsMsg;
  event: IncomingEvent;
  handler: Handler;
  span: Span;
  ctx: Context;
  correlationId: string;
  started: number;
  deliveryCount: number;
}

/** Retryable failure: the message is nak'ed with a delay and comes back. */
export class RetryableError extends Error {
  override readonly name = 'RetryableError';
}

/**
 * A durable pull consumer whose handlers are idempotent by construction: each runs in a DB
 * transaction that first records the event id in processed_events, so a redelivered event is
 * acked without running its effects again, and its outgoing events go through the outbox in the
 * same transaction. Poison messages are copied to the dead-letter subject before term(); a
 * message failing on its last allowed delivery goes there too.
 *
 * Messages that queue up are handled in batches, one transaction a batch; if the batch fails,
 * each of its messages is retried alone, so one failing message cannot hold the others back and
 * is the only one nak'ed or dead-lettered.
 */
export class EventConsumer {
  readonly #concurrency: number;
  readonly #batchSize: number;
  readonly #workers: number;
  #queue: JsMsg[] = [];
  #batches = 0;
  readonly #maxDeliver: number;
  readonly #ackWaitMs: number;
  readonly #backoffMs: number[];
  readonly #dlqSubject: string;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #inflight = new Set<Promise<void>>();
  #stopped = false;
  #started = false;
  /** Handlers by event type, with the version each declared (a bare function: v1). */
  readonly #handlers = new Map<string, { version: string; handle: Handler }>();
  #statsTimer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly o: EventConsumerOptions) {
    for (const [type, h] of Object.entries(o.handlers) as Array<[EventType, Handler | { version: string; handle: Handler } | undefined]>) {
      if (!h) continue;
      const entry = typeof h === 'function' ? { version: 'v1', handle: h } : h;
      if (!Object.hasOwn(EVENT_SCHEMAS[type], entry.version)) throw new Error(`${o.spec.durableName}: handler for ${type} declares unknown version ${entry.version}`);
      this.#handlers.set(type, entry);
    }
    this.#concurrency = o.concurrency ?? 32;
    this.#batchSize = Math.max(1, o.batchSize ?? 64);
    this.#workers = Math.max(1, o.workers ?? 1);
    this.#maxDeliver = o.spec.maxDeliver ?? 5;
    this.#ackWaitMs = parseDuration(o.spec.ackWait ?? '30s');
    this.#backoffMs = (o.spec.backoff ?? ['1s']).map(parseDuration);
    this.#dlqSubject = o.spec.deadLetter?.subject ?? o.names.dlqSubject(o.spec.streamName, o.spec.durableName);
  }

  get durable(): string {
    return this.o.spec.durableName;
  }

  /** Begins consuming once NATS is connected; returns at once. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.o.nats.onConnected(() => {
      if (!this.#stopped) this.#loop = this.#consumeForever();
    });
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
    const conn = this.o.nats.current;
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

  /** Stops pulling, lets in-flight handlers finish and ack (or nak). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#statsTimer);
    await this.#messages?.close().catch(() => undefined);
    await this.#loop;
    // Messages already delivered to us are handled (and acked) rather than left to time out.
    while (this.#inflight.size || this.#queue.length) {
      this.#pump();
      await Promise.allSettled([...this.#inflight]);
    }
  }

  async #consumeForever(): Promise<void> {
    const { spec, log } = this.o;
    let attempt = 0;
    while (!this.#stopped) {
      try {
        const conn = await this.o.nats.ready();
        const consumer = await conn.js.consumers.get(spec.streamName, spec.durableName);
        // Short pulls: on a cluster, a pull request held by a consumer leader that dies is lost
        // silently; the client notices only after two missed idle heartbeats (expires / 2 each).
        // The default 30 s expiry stalled a durable ~35 s after kill -9 of its leader node.
        this.#messages = await consumer.consume({ max_messages: Math.max(this.#batchSize * 2, 64), expires: 5_000 });
        attempt = 0;
        log.info({ stream: spec.streamName, consumer: spec.durableName }, 'consumer.started');
        void this.refreshStats();
        for await (const msg of this.#messages) {
          this.#queue.push(msg);
          this.#pump();
          // Backpressure: stop taking messages while a full batch waits and the workers are busy.
          while (this.#queue.length >= this.#batchSize && this.#inflight.size >= this.#workers) await Promise.race(this.#inflight);
        }
      } catch (err) {
        if (this.#stopped) break;
        // The consumer may not exist yet (the operator creates it) or the stream is moving.
        const delay = Math.min(500 * 2 ** attempt++, 10_000);
        log.warn({ err, stream: spec.streamName, consumer: spec.durableName, retryInMs: delay }, 'consumer.unavailable');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Starts batches while there is queued work and a free worker. */
  #pump(): void {
    while (this.#queue.length && this.#batches < this.#workers && this.#inflight.size < this.#concurrency) {
      const msgs = this.#queue.splice(0, this.#batchSize);
      this.#batches++;
      this.#track(
        this.#runBatch(msgs)
          .catch((err: unknown) => {
            // #runBatch settles every expected failure itself; anything else is a bug that must
            // not become an unhandled rejection (which ends the process): log it, retry later.
            this.o.log.error({ err, count: msgs.length }, 'consumer.unexpected_error');
            for (const m of msgs) m.nak(5000);
          })
          .finally(() => {
            this.#batches--;
            queueMicrotask(() => this.#pump());
          }),
      );
    }
  }

  #track(p: Promise<void>): void {
    const t: Promise<void> = p.finally(() => this.#inflight.delete(t));
    this.#inflight.add(t);
  }

  /**
   * Decodes a message and opens its CONSUMER span. Poison, unhandled types and ignored twins
   * are settled here (DLQ / ack); what needs a handler comes back as Work.
   */
  async #prepare(msg: JsMsg): Promise<Work | undefined> {
    const { names, metrics, spec, log } = this.o;
    const deliveryCount = msg.info.deliveryCount;
    const parent = extractTraceContext(msg.headers);
    const span = tracer().startSpan(
      `${msg.subject} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'nats',
          'messaging.operation.type': 'process',
          'messaging.destination.name': msg.subject,
          'messaging.consumer.group.name': spec.durableName,
          'messaging.message.id': msg.headers?.get('Nats-Msg-Id') ?? '',
          'messaging.nats.delivery_count': deliveryCount,
          'messaging.nats.stream_sequence': msg.seq,
        },
      },
      parent,
    );
    const base = {
      msg,
      span,
      ctx: trace.setSpan(parent, span),
      correlationId: msg.headers?.get('X-Correlation-ID') || 'unknown',
      started: performance.now(),
      deliveryCount,
    };
    if (deliveryCount > 1) span.addEvent('redelivery', { 'messaging.nats.delivery_count': deliveryCount });
    const settle = async (fn: () => Promise<void> | void) => {
      await this.#within(base, async () => fn());
      span.end();
      return undefined;
    };
    let event: IncomingEvent;
    try {
      event = decodeEvent(names, msg.subject, msg.data, msg.headers, this.o.accepts);
    } catch (err) {
      if (err instanceof PoisonMessageError) return settle(() => this.#deadLetter(msg, err.message, 'poison'));
      throw err;
    }
    const declared = this.#handlers.get(event.type);
    if (!declared) {
      return settle(() => {
        msg.ack();
        metrics?.consumed.inc({ subject: msg.subject, result: 'ignored' });
      });
    }
    // Versions: show the handler its declared version, ignore a dual-published copy whose twin
    // it handles, upcast old history; anything else is poison (events/upcast.ts).
    try {
      const decision = adaptToVersion(event, declared.version);
      if (decision.kind === 'twin') {
        return settle(() => {
          msg.ack();
          metrics?.consumed.inc({ subject: msg.subject, result: 'ignored' });
          log.debug({ subject: msg.subject, seq: msg.seq, eventId: event.id }, decision.reason);
        });
      }
      event = decision.event;
    } catch (err) {
      if (err instanceof PoisonMessageError) return settle(() => this.#deadLetter(msg, err.message, 'poison'));
      throw err;
    }
    return { ...base, event, handler: declared.handle };
  }

  /** The transaction body for some messages: record their ids, run the fresh ones' handlers in order, queue their events. */
  async #transact(sql: Sql, works: Work[], after: Array<{ w: Work; fn: () => Promise<void> }>): Promise<Set<Work>> {
    const { spec, names, log } = this.o;
    const rows = await sql.query<{ event_id: string }>(
      `INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id`,
      [spec.durableName, works.map((w) => w.event.id)],
    );
    const fresh = new Set(rows.map((r) => r.event_id));
    const handled = new Set<Work>();
    const out: OutgoingEvent[] = [];
    for (const w of works) {
      // A duplicate of an event already handled, earlier or in this very batch.
      if (!fresh.delete(w.event.id)) continue;
      handled.add(w);
      await this.#within(w, () =>
          w.handler({
            event: w.event,
            sql,
            log,
            deliveryCount: w.deliveryCount,
            // Trace context is taken now, inside this message's span: the outbox insert runs
            // once for the whole batch, outside any one message's context.
            emit: (type, data) => {
              const e = makeEvent(names, type, data);
              injectTraceHeaders(e.headers);
              out.push(e);
            },
            afterCommit: (fn) => after.push({ w, fn }),
          }),
      );
    }
    await enqueue(sql, out);
    return handled;
  }

  /** Acks committed work, ends spans, starts after-commit calls in the background. */
  #committed(works: Work[], handled: Set<Work>, after: Array<{ w: Work; fn: () => Promise<void> }>): void {
    const { metrics, log } = this.o;
    if (handled.size) this.o.relay?.wake();
    for (const w of works) {
      w.msg.ack();
      metrics?.consumed.inc({ subject: w.msg.subject, result: handled.has(w) ? 'handled' : 'duplicate' });
      metrics?.handlerDuration.observe({ subject: w.msg.subject }, (performance.now() - w.started) / 1000);
      w.span.end();
    }
    for (const { w, fn } of after) {
      this.#track(this.#within(w, fn).catch((err: unknown) => log.error({ err, eventId: w.event.id }, 'consumer.after_commit_failed')));
    }
  }

  async #runBatch(msgs: JsMsg[]): Promise<void> {
    const works: Work[] = [];
    for (const msg of msgs) {
      const w = await this.#prepare(msg);
      if (w) works.push(w);
    }
    if (works.length === 0) return;
    // With a backoff list the server times delivery n out after backoff[n-1], not ack_wait.
    const ackWait = Math.min(...works.map((w) => this.#ackWaitFor(w.deliveryCount)));
    const heartbeat = setInterval(() => works.forEach((w) => w.msg.working()), Math.max(20, Math.floor(ackWait / 3)));
    try {
      if (works.length === 1) return await this.#runOne(works[0]!);
      const after: Array<{ w: Work; fn: () => Promise<void> }> = [];
      let handled: Set<Work>;
      try {
        handled = await this.o.db.tx((sql) => this.#transact(sql, works, after));
      } catch (err) {
        this.o.log.debug({ err, count: works.length }, 'consumer.batch_failed_retrying_one_by_one');
        for (const w of works) await this.#runOne(w);
        return;
      }
      this.#committed(works, handled, after);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** One message in its own transaction; its failure is nak'ed with backoff or dead-lettered. */
  async #runOne(w: Work): Promise<void> {
    const { metrics, log } = this.o;
    const { msg, deliveryCount } = w;
    const after: Array<{ w: Work; fn: () => Promise<void> }> = [];
    try {
      const handled = await this.o.db.tx((sql) => this.#transact(sql, [w], after));
      this.#committed([w], handled, after);
      return;
    } catch (err) {
      await this.#within(w, async () => {
        if (err instanceof PoisonMessageError) return this.#deadLetter(msg, err.message, 'poison');
        metrics?.failed.inc({ subject: msg.subject, kind: 'handler' });
        w.span.recordException(err as Error);
        w.span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        if (deliveryCount >= this.#maxDeliver) {
          return this.#deadLetter(msg, `handler failed on delivery ${deliveryCount} of ${this.#maxDeliver}: ${(err as Error).message}`, 'max_deliver');
        }
        const delay = this.#backoffMs[Math.min(deliveryCount - 1, this.#backoffMs.length - 1)] ?? 1000;
        log.warn({ err, subject: msg.subject, seq: msg.seq, deliveryCount, retryInMs: delay }, 'consumer.handler_failed');
        msg.nak(delay);
      });
      metrics?.handlerDuration.observe({ subject: msg.subject }, (performance.now() - w.started) / 1000);
      w.span.end();
    }
  }

  /** Runs fn inside a message's span and work context (logs carry its trace and correlation ids). */
  #within<T>(w: Pick<Work, 'ctx' | 'correlationId'>, fn: () => Promise<T>): Promise<T> {
    return context.with(w.ctx, () => withWorkContext({ correlationId: w.correlationId }, fn));
  }

  #ackWaitFor(deliveryCount: number): number {
    if (!this.o.spec.backoff?.length) return this.#ackWaitMs;
    return this.#backoffMs[Math.min(deliveryCount - 1, this.#backoffMs.length - 1)] ?? this.#ackWaitMs;
  }

  /** Copies to the DLQ and waits for its ack before term(): under workqueue retention a terminated message is gone. */
  async #deadLetter(msg: JsMsg, reason: string, kind: string): Promise<void> {
    const { log, metrics, spec } = this.o;
    const conn = this.o.nats.current;
    try {
      if (!conn) throw new Error('not connected');
      await publishDeadLetter(conn.js, {
        dlqSubject: this.#dlqSubject,
        stream: spec.streamName,
        consumer: spec.durableName,
        streamSeq: msg.seq,
        deliveries: msg.info.deliveryCount,
        originalSubject: msg.subject,
        reason,
        data: msg.data,
        headers: msg.headers,
      });
    } catch (err) {
      // Not copied: leave the message to be redelivered rather than lose it.
      log.error({ err, subject: msg.subject, seq: msg.seq }, 'consumer.dead_letter_failed');
      msg.nak(5000);
      return;
    }
    trace.getActiveSpan()?.addEvent('dead_lettered', { reason, 'messaging.destination.name': this.#dlqSubject });
    // Plain term(): nats-server 2.9 does not parse `+TERM <reason>` and leaves the message
    // ack-pending until it is redelivered (measured: still unacked after 3 s, gone only after
    // max_deliver). The reason is already on the DLQ copy (Dlq-Reason).
    msg.term();
    metrics?.deadLettered.inc({ consumer: spec.durableName, reason: kind });
    metrics?.consumed.inc({ subject: msg.subject, result: 'dead_lettered' });
    log.warn({ subject: msg.subject, seq: msg.seq, reason, dlq: this.#dlqSubject }, 'consumer.dead_lettered');
  }
}
