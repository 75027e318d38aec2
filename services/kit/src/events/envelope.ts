import { randomUUID } from 'node:crypto';
import * as v from 'valibot';
import { H } from './headers.js';
import type { HeaderLookup } from './header-view.js';
import { EVENT_SCHEMAS, isEventType, type DefaultVersion, type EventData, type EventType, type EventVersion } from './schemas.js';
import { readSetting } from '../config.js';
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

/**
 * An event received and validated. `V` is the version the handler declared (v1 unless it says
 * otherwise); the runtime has already ignored twins or upcast older versions to it (upcast.ts).
 */
export interface IncomingEvent<T extends EventType = EventType, V extends EventVersion<T> = DefaultVersion<T>> {
  /**
   * The logical event id: the `Event-Id` header shared by all versions of a dual-published event,
   * else the message id. processed_events keys on it, so one event is handled at most once per
   * consumer whichever of its versions arrives (also when a durable switches version mid-stream).
   */
  id: string;
  type: T;
  version: string;
  correlationId: string;
  data: EventData<T, V>;
  /** The versions this event was published in together (`Event-Versions`), else just its own. */
  publishedVersions: readonly string[];
  /** The version on the wire when the runtime upcast the event to the handler's version. */
  upcastFrom?: string;
}

/** A message that can never be handled: it goes to the dead-letter subject, not back to the queue. */
export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

/**
 * Builds an event and validates it against its own contract, so a producer bug fails the
 * producing transaction instead of poisoning every consumer downstream.
 */
export function makeEvent<T extends EventType>(
  names: Names,
  type: T,
  data: EventData<T>,
  extraHeaders: Record<string, string> = {},
): OutgoingEvent {
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

/**
 * Builds one event in several versions for dual publishing (e.g. orders.created v1 and v2 during a
 * migration). Each copy is a complete event with its own `Nats-Msg-Id` (same subject: JetStream
 * would drop the second as a duplicate otherwise); all carry `Event-Id` (the first copy's id) and
 * `Event-Versions` ("v1,v2") so a consumer knows a twin in its own version exists and ignores the
 * others. Enqueue the result in one outbox transaction: either every copy is published or none,
 * which is what makes "ignore it, the twin will come" safe. One version → exactly `makeEvent`.
 */
export function makeEventVersions<T extends EventType>(
  names: Names,
  type: T,
  copies: readonly EventData<T>[],
  extraHeaders: Record<string, string> = {},
): OutgoingEvent[] {
  const versions = copies.map((d) => (d as { version: string }).version);
  if (copies.length === 0) throw new Error(`no versions of ${type} to publish`);
  if (new Set(versions).size !== versions.length) throw new Error(`${type} versions repeat: ${versions.join(',')}`);
  if (copies.length === 1) return [makeEvent(names, type, copies[0]!, extraHeaders)];
  const first = makeEvent(names, type, copies[0]!, extraHeaders);
  const shared = { [H.eventId]: first.id, [H.eventVersions]: versions.join(',') };
  Object.assign(first.headers, shared);
  return [first, ...copies.slice(1).map((d) => makeEvent(names, type, d, { ...extraHeaders, ...shared }))];
}

/**
 * Reads a producer's list of versions to publish for one event type, e.g.
 * `ORDERS_CREATED_VERSIONS=v1,v2`. Unknown versions fail at start-up, not at the first publish.
 */
export function publishVersionsSetting<T extends EventType>(
  name: string,
  type: T,
  fallback: readonly EventVersion<T>[],
  env: Record<string, string | undefined> = process.env,
): EventVersion<T>[] {
  const raw = readSetting(name, env);
  if (raw === undefined) return [...fallback];
  const known = Object.keys(EVENT_SCHEMAS[type]);
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((x) => !known.includes(x));
  if (list.length === 0 || bad.length)
    throw new Error(`${name}="${raw}": expected a comma list of ${known.join(', ')} (versions of ${type})`);
  return [...new Set(list)] as EventVersion<T>[];
}

const utf8 = new TextDecoder();

/** Validates a received message against the contract named by its headers (a MsgHdrs or a headerView). */
export function decodeEvent(
  names: Names,
  subject: string,
  data: Uint8Array,
  headers: HeaderLookup | undefined,
  accepts?: ReadonlySet<string>,
): IncomingEvent {
  const type = headers?.get(H.eventType) || names.eventType(subject);
  if (!isEventType(type)) throw new PoisonMessageError(`unknown event type "${type}" on ${subject}`);
  const id = headers?.get(H.msgId);
  if (!id) throw new PoisonMessageError(`missing ${H.msgId} header on ${subject}`);
  let body: unknown;
  try {
    body = JSON.parse(utf8.decode(data));
  } catch (err) {
    throw new PoisonMessageError(`payload is not JSON: ${(err as Error).message}`);
  }
  const version = headers?.get(H.eventVersion) || (body as { version?: unknown } | null)?.version;
  if (typeof version !== 'string') throw new PoisonMessageError(`no event version on ${type}`);
  // Own keys only: a header "Event-Version: constructor" must not find Object (found by the
  // hostile-input test: valibot then threw a TypeError, an unhandled rejection in the consumer).
  const versions = EVENT_SCHEMAS[type] as Record<string, v.GenericSchema>;
  const schema = Object.hasOwn(versions, version) ? versions[version] : undefined;
  if (!schema)
    throw new PoisonMessageError(`unknown version ${version} of ${type} (this build knows ${Object.keys(EVENT_SCHEMAS[type]).join(', ')})`);
  // Dual publishing: which versions were published together, and the id they share.
  const listed = headers?.get(H.eventVersions);
  const publishedVersions = listed
    ? listed
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [version];
  if (!publishedVersions.includes(version)) {
    throw new PoisonMessageError(`${H.eventVersions} "${listed}" does not list this message's version ${version} of ${type}`);
  }
  const eventId = headers?.get(H.eventId) || id;
  if (accepts && !accepts.has(`${type}@${version}`) && !accepts.has(type)) {
    throw new PoisonMessageError(`version ${version} of ${type} is not accepted by this consumer`);
  }
  const parsed = v.safeParse(schema, body);
  if (!parsed.success) throw new PoisonMessageError(`invalid ${type} ${version}: ${formatIssues(parsed.issues)}`);
  const out = parsed.output as { correlationId: string };
  return {
    id: eventId,
    type,
    version,
    correlationId: out.correlationId,
    data: parsed.output as EventData<EventType, 'v1'>,
    publishedVersions,
  };
}

export function formatIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${v.getDotPath(i) ?? '(root)'}: ${i.message}`)
    .join('; ');
}
