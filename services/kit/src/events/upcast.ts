/**
 * Event versions on the consuming side: a handler is written for one version of an event type
 * and only ever sees that version. For every other version that arrives the runtime decides:
 *
 * - **twin**: the event was dual-published (`Event-Versions` lists the handler's version too), so
 *   the copy in the handler's version is (or was) also in the stream; this copy is acked and
 *   ignored. The producer enqueued all copies in one outbox transaction, so the twin exists.
 * - **upcast**: an older version with no twin — history from before dual publishing, e.g. a new
 *   durable replaying the stream — is converted step by step (v1→v2→…) by the registered
 *   upcasters, and the result is validated against the handler's version.
 * - **dead letter**: a newer version with no twin (nothing converts downwards), or an older one
 *   with no upcaster: PoisonMessageError with a reason that names the versions involved.
 *
 * Unknown versions never get here: decodeEvent dead-letters them ("unknown version …").
 */
import * as v from 'valibot';
import { PoisonMessageError, formatIssues, type IncomingEvent } from './envelope.js';
import { EVENT_SCHEMAS, type EventData, type EventType, type EventVersion } from './schemas.js';

interface UpcastStep {
  to: string;
  // `never` parameter: each step is typed where it is declared (see step()); the registry only
  // stores it, and upcast() feeds it data already validated as the step's source version.
  up: (data: never) => unknown;
}

/** Declares one upcaster, checked against the two versions' schemas. */
function step<T extends EventType, F extends EventVersion<T>, To extends EventVersion<T>>(
  _type: T,
  _from: F,
  to: To,
  up: (data: EventData<T, F>) => EventData<T, To>,
): UpcastStep {
  return { to, up };
}

/** Registered upcasters: type → source version → the next version. Add one per new version. */
export const UPCASTERS: { readonly [T in EventType]?: Readonly<Record<string, UpcastStep>> } = {
  'orders.created': {
    // v2 nests the customer reference; nothing else changed, so the conversion is exact.
    v1: step('orders.created', 'v1', 'v2', ({ version: _v, customerId, ...rest }) => ({
      ...rest,
      version: 'v2' as const,
      customer: { id: customerId },
    })),
  },
};

/** "v12" → 12; versions compare by number, not as text ("v10" > "v9"). */
export function versionNumber(version: string): number {
  const m = /^v(\d+)$/.exec(version);
  if (!m) throw new Error(`malformed event version "${version}" (expected v<number>)`);
  return Number(m[1]);
}

/** The chain of versions from `from` to `to` through registered upcasters, or undefined. */
export function upcastPath(type: EventType, from: string, to: string): string[] | undefined {
  const path = [from];
  let at = from;
  while (at !== to) {
    const next = UPCASTERS[type]?.[at];
    if (!next || path.includes(next.to)) return undefined;
    path.push((at = next.to));
  }
  return path;
}

/**
 * Converts `data` (valid `from`) to version `to`, validating after every step so a faulty
 * upcaster is reported as such instead of reaching a handler.
 */
export function upcast<T extends EventType>(type: T, from: string, to: string, data: unknown): unknown {
  const path = upcastPath(type, from, to);
  if (!path) throw new PoisonMessageError(`no upcaster from ${from} to ${to} for ${type}`);
  let out = data;
  for (let i = 1; i < path.length; i++) {
    const target = path[i]!;
    out = UPCASTERS[type]![path[i - 1]!]!.up(out as never);
    const schema = (EVENT_SCHEMAS[type] as Record<string, v.GenericSchema>)[target]!;
    const parsed = v.safeParse(schema, out);
    if (!parsed.success)
      throw new PoisonMessageError(`upcasting ${type} ${path[i - 1]}→${target} produced an invalid event: ${formatIssues(parsed.issues)}`);
    out = parsed.output;
  }
  return out;
}

export type VersionDecision = { kind: 'handle'; event: IncomingEvent } | { kind: 'twin'; reason: string };

/**
 * What a consumer whose handler is written for version `handles` does with a decoded event (see
 * the file comment). Throws PoisonMessageError when the event cannot be shown in that version.
 */
export function adaptToVersion(event: IncomingEvent, handles: string): VersionDecision {
  const { type, version, publishedVersions } = event;
  if (version === handles) return { kind: 'handle', event };
  if (publishedVersions.includes(handles)) {
    return {
      kind: 'twin',
      reason: `${type} ${version} ignored: its ${handles} twin is handled (published as ${publishedVersions.join(',')})`,
    };
  }
  if (versionNumber(version) < versionNumber(handles)) {
    if (!upcastPath(type, version, handles)) {
      throw new PoisonMessageError(
        `${type} ${version} cannot be read by this consumer (handles ${handles}): no ${handles} twin and no upcaster ${version}→${handles}`,
      );
    }
    const data = upcast(type, version, handles, event.data);
    return { kind: 'handle', event: { ...event, version: handles, upcastFrom: version, data: data as IncomingEvent['data'] } };
  }
  throw new PoisonMessageError(
    `${type} ${version} is newer than this consumer handles (${handles}) and was published without a ${handles} twin ` +
      `(Event-Versions: ${publishedVersions.join(',')}); move the consumer to ${version} or publish ${handles} too`,
  );
}
