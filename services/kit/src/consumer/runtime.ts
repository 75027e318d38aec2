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
import { extractTraceContext, inSpan, SpanKind } from '../tracing/propagation.js';
import { trace } from '@opentelemetry/api';

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
  /** In-process limit on handlers running at once (JetStream's maxAckPending bounds the rest). */
  concurrency?: number;
  /** `type` or `type@version` entries; a version outside this set is dead-lettered. */
  accepts?: ReadonlySet<string>;
  /** How often pending / ack-pending / DLQ depth gauges are read from JetStream (default 5 s). */
  statsIntervalMs?: number;
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
 */
export class EventConsumer {
  readonly #concurrency: number;
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
    await Promise.allSettled([...this.#inflight]);
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
        this.#messages = await consumer.consume({ max_messages: Math.max(this.#concurrency * 2, 64), expires: 5_000 });
        attempt = 0;
        log.info({ stream: spec.streamName, consumer: spec.durableName }, 'consumer.started');
        void this.refreshStats();
        for await (const msg of this.#messages) {
          if (this.#inflight.size >= this.#concurrency) await Promise.race(this.#inflight);
          // #handle settles every expected failure itself; anything else is a bug that must not
          // become an unhandled rejection (which ends the process): log it and retry later.
          const p: Promise<void> = this.#handle(msg)
            .catch((err: unknown) => {
              log.error({ err, subject: msg.subject, seq: msg.seq }, 'consumer.unexpected_error');
              msg.nak(5000);
            })
            .finally(() => this.#inflight.delete(p));
          this.#inflight.add(p);
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

  async #handle(msg: JsMsg): Promise<void> {
    const { names, log, metrics, spec } = this.o;
    const deliveryCount = msg.info.deliveryCount;
    const started = performance.now();
    const parent = extractTraceContext(msg.headers);
    const correlationId = msg.headers?.get('X-Correlation-ID') || 'unknown';
    await withWorkContext({ correlationId }, () =>
      inSpan(
        `${msg.subject} process`,
        {
          kind: SpanKind.CONSUMER,
          parent,
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
        async (span) => {
          if (deliveryCount > 1) span.addEvent('redelivery', { 'messaging.nats.delivery_count': deliveryCount });
          let event: IncomingEvent;
          try {
            event = decodeEvent(names, msg.subject, msg.data, msg.headers, this.o.accepts);
          } catch (err) {
            if (err instanceof PoisonMessageError) return this.#deadLetter(msg, err.message, 'poison');
            throw err;
          }
          const declared = this.#handlers.get(event.type);
          if (!declared) {
            msg.ack();
            metrics?.consumed.inc({ subject: msg.subject, result: 'ignored' });
            return;
          }
          // Versions: show the handler its declared version, ignore a dual-published copy whose
          // twin it handles, upcast old history; anything else is poison (events/upcast.ts).
          try {
            const decision = adaptToVersion(event, declared.version);
            if (decision.kind === 'twin') {
              msg.ack();
              metrics?.consumed.inc({ subject: msg.subject, result: 'ignored' });
              log.debug({ subject: msg.subject, seq: msg.seq, eventId: event.id }, decision.reason);
              return;
            }
            event = decision.event;
          } catch (err) {
            if (err instanceof PoisonMessageError) return this.#deadLetter(msg, err.message, 'poison');
            throw err;
          }
          const handler = declared.handle;
          // With a backoff list the server times delivery n out after backoff[n-1], not ack_wait.
          const ackWait = this.o.spec.backoff?.length ? (this.#backoffMs[Math.min(deliveryCount - 1, this.#backoffMs.length - 1)] ?? this.#ackWaitMs) : this.#ackWaitMs;
          const heartbeat = setInterval(() => msg.working(), Math.max(20, Math.floor(ackWait / 3)));
          try {
            const after: Array<() => Promise<void>> = [];
            const fresh = await this.o.db.tx(async (sql) => {
              const rec = await sql.query(
                `INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1 AS fresh`,
                [spec.durableName, event.id],
              );
              if (rec.length === 0) return false;
              const out: OutgoingEvent[] = [];
              await handler({
                event,
                sql,
                log,
                deliveryCount,
                emit: (type, data) => out.push(makeEvent(names, type, data)),
                afterCommit: (fn) => after.push(fn),
              });
              await enqueue(sql, out);
              return true;
            });
            if (fresh) this.o.relay?.wake();
            msg.ack();
            metrics?.consumed.inc({ subject: msg.subject, result: fresh ? 'handled' : 'duplicate' });
            for (const fn of after) await fn().catch((err: unknown) => log.error({ err, eventId: event.id }, 'consumer.after_commit_failed'));
          } catch (err) {
            if (err instanceof PoisonMessageError) return this.#deadLetter(msg, err.message, 'poison');
            metrics?.failed.inc({ subject: msg.subject, kind: 'handler' });
            span.recordException(err as Error);
            if (deliveryCount >= this.#maxDeliver) {
              return this.#deadLetter(msg, `handler failed on delivery ${deliveryCount} of ${this.#maxDeliver}: ${(err as Error).message}`, 'max_deliver');
            }
            const delay = this.#backoffMs[Math.min(deliveryCount - 1, this.#backoffMs.length - 1)] ?? 1000;
            log.warn({ err, subject: msg.subject, seq: msg.seq, deliveryCount, retryInMs: delay }, 'consumer.handler_failed');
            msg.nak(delay);
          } finally {
            clearInterval(heartbeat);
            metrics?.handlerDuration.observe({ subject: msg.subject }, (performance.now() - started) / 1000);
          }
        },
      ),
    );
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
