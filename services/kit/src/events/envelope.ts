import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import type { MsgHdrs } from '@nats-io/nats-core';
import { H } from './headers.js';
import { EVENT_SCHEMAS, isEventType, type EventData, type EventType } from './schemas.js';
import type { Names } from '../topology.js';

/** An event ready for the outbox: exactly the bytes and headers that will be published. */
export interface OutgoingEvent {
  id: string;
  type: EventType;
  version: string;
  subject: string;
  payload: string;
  headers: Record<string, string>;
}

/** An event received and validated. */
export interface IncomingEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  version: string;
  correlationId: string;
  data: EventData<T>;
}

/** A message that can never be handled: it goes to the dead-letter subject, not back to the queue. */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

/**
 * Builds an event and validates it against its own contract, so a producer bug fails the
 * producing transaction instead of poisoning every consumer downstream.
 */
export function makeEvent<T extends EventType>(names: Names, type: T, data: EventData<T>, extraHeaders: Record<string, string> = {}): OutgoingEvent {
  const version = (data as { version: string }).version;
  const schema = (EVENT_SCHEMAS[type] as Record<string, v.GenericSchema>)[version];
  if (!schema) throw new Error(`no schema for ${type} ${version}`);
  const parsed = v.safeParse(schema, data);
  if (!parsed.success) {
    throw new Error(`refusing to publish invalid ${type} ${version}: ${formatIssues(parsed.issues)}`);
  }
  const id = randomUUID();
  const correlationId = (data as { correlationId: string }).correlationId;
  return {
    id,
    type,
    version,
    subject: names.subject(type),
    payload: JSON.stringify(data),
    headers: {
      ...extraHeaders,
      [H.msgId]: id,
      [H.eventType]: type,
      [H.eventVersion]: version,
      [H.correlationId]: correlationId,
    },
  };
}

/** Validates a received message against the contract named by its headers. */
export function decodeEvent(names: Names, subject: string, data: Uint8Array, headers: MsgHdrs | undefined, accepts?: ReadonlySet<string>): IncomingEvent {
  const type = headers?.get(H.eventType) || names.eventType(subject);
  if (!isEventType(type)) throw new PoisonMessageError(`unknown event type "${type}" on ${subject}`);
  const id = headers?.get(H.msgId);
  if (!id) throw new PoisonMessageError(`missing ${H.msgId} header on ${subject}`);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(data));
  } catch (err) {
    throw new PoisonMessageError(`payload is not JSON: ${(err as Error).message}`);
  }
  const version = headers?.get(H.eventVersion) || (body as { version?: unknown } | null)?.version;
  if (typeof version !== 'string') throw new PoisonMessageError(`no event version on ${type}`);
  const schema = (EVENT_SCHEMAS[type] as Record<string, v.GenericSchema>)[version];
  if (!schema) throw new PoisonMessageError(`unknown version ${version} of ${type}`);
  if (accepts && !accepts.has(`${type}@${version}`) && !accepts.has(type)) {
    throw new PoisonMessageError(`version ${version} of ${type} is not accepted by this consumer`);
  }
  const parsed = v.safeParse(schema, body);
  if (!parsed.success) throw new PoisonMessageError(`invalid ${type} ${version}: ${formatIssues(parsed.issues)}`);
  const out = parsed.output as { correlationId: string };
  return { id, type, version, correlationId: out.correlationId, data: parsed.output as EventData<EventType> };
}

export function formatIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${v.getDotPath(i) ?? '(root)'}: ${i.message}`)
    .join('; ');
}
