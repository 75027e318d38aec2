/**
 * The handler contract: what a service writes to consume an event. A handler gets the event and
 * the transaction its processed-event record lives in; it changes state through `sql` and emits
 * through the outbox (`emit`), so a redelivery never runs its effects twice.
 */
import type { Logger } from 'pino';
import type { TxSql } from '../db/db.js';
import type { IncomingEvent, OutgoingEvent } from '../events/envelope.js';
import type { DefaultVersion, EventData, EventType, EventVersion } from '../events/schemas.js';

export interface HandlerContext<T extends EventType = EventType, V extends EventVersion<T> = DefaultVersion<T>> {
  event: IncomingEvent<T, V>;
  /**
   * The transaction the processed-event record lives in: do every state change here. A write
   * whose result the handler knows already goes with `sql.write`: no round trip of its own.
   */
  sql: TxSql;
  log: Logger;
  deliveryCount: number;
  /**
   * Every event this transaction handles, in order, this one included (one, when a message is
   * handled alone). A handler may lock or read what all of them need in one statement, once per
   * transaction, instead of one statement each.
   */
  peers: readonly IncomingEvent[];
  /** Queues an event into the outbox, in this same transaction. */
  emit<E extends EventType>(type: E, data: EventData<E>): void;
  /**
   * Events the handler inserted into the outbox itself (folded into a statement of its own with
   * outboxInsertSql/outboxParams): once the transaction commits the relay publishes them at once,
   * as it does emitted ones, instead of finding them at its poll.
   */
  enqueued(events: readonly OutgoingEvent[]): void;
  /** Runs after the transaction commits (e.g. a call that must not hold the transaction). */
  afterCommit(fn: () => Promise<void>): void;
}

export type Handler<T extends EventType = EventType, V extends EventVersion<T> = DefaultVersion<T>> = (
  ctx: HandlerContext<T, V>,
) => Promise<void>;

/**
 * A handler that declares the one version of its event type it is written for, e.g.
 * `{ version: 'v2', handle }`. A bare function handles v1. The handler sees only its version:
 * the other versions of the same event (dual publishing) are acked and ignored, older ones with
 * no twin are upcast, the rest dead-lettered (events/upcast.ts).
 */
export type VersionedHandler<T extends EventType> = { [V in EventVersion<T>]: { version: V; handle: Handler<T, V> } }[EventVersion<T>];

export type Handlers = { [T in EventType]?: Handler<T> | VersionedHandler<T> };
