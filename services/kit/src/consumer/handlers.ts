import type { Logger } from 'pino';
import type { Sql } from '../db/db.js';
import type { IncomingEvent } from '../events/envelope.js';
import { EVENT_SCHEMAS, type DefaultVersion, type EventData, type EventType, type EventVersion } from '../events/schemas.js';

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

export interface DeclaredHandler {
  version: string;
  handle: Handler;
}

/** Handlers by event type with the version each declared (a bare function: v1); an unknown version is a wiring bug. */
export function declaredHandlers(durable: string, handlers: Handlers): Map<string, DeclaredHandler> {
  const out = new Map<string, DeclaredHandler>();
  for (const [type, h] of Object.entries(handlers) as Array<[EventType, Handler | DeclaredHandler | undefined]>) {
    if (!h) continue;
    const entry = typeof h === 'function' ? { version: 'v1', handle: h } : h;
    if (!Object.hasOwn(EVENT_SCHEMAS[type], entry.version)) throw new Error(`${durable}: handler for ${type} declares unknown version ${entry.version}`);
    out.set(type, entry);
  }
  return out;
}
