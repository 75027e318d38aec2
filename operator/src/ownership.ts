/**
 * Who owns a JetStream object. A resource that creates a stream or consumer writes an ownership
 * marker into the object's metadata (nats-server 2.10+); another resource naming the same object is
 * refused instead of fighting over it, and a resource is deleted without deleting an object it
 * does not own. An object that existed before (made by the services, the CLI, by hand) is taken
 * over only when asked: the annotation `jetstream.orderflow.dev/adopt: "true"`.
 *
 * Pure: the reconciler reads the object and the resource, this decides.
 */
import { GROUP } from './resources.js';

/** The metadata key of the marker; its value is the owning resource, `<namespace>/<name>`. */
export const OWNER_KEY = `${GROUP}/owner`;
/** Marker of a stream the operator made itself (a consumer's dead-letter stream): any resource that declares it may take it over. */
export const OPERATOR_MARKER = 'operator';
/** The annotation that asks to take over an existing object not marked by this resource. */
export const ADOPT_ANNOTATION = `${GROUP}/adopt`;

export const ownerId = (namespace: string, name: string): string => `${namespace}/${name}`;

export type Ownership =
  /** Nothing there yet: created with our marker. */
  | { state: 'absent' }
  | { state: 'ours' }
  /** Taken over now: the next write carries our marker. */
  | { state: 'adopt'; from?: string }
  /** Another resource's (the marker names it). */
  | { state: 'foreign'; owner: string }
  /** There, unmarked, and no adoption asked for. */
  | { state: 'unmarked' }
  /** The server keeps no metadata (before 2.10): no marker can be written, ownership is not tracked. */
  | { state: 'untracked' };

export interface OwnershipFacts {
  exists: boolean;
  /** The object's metadata as the server holds it. */
  metadata?: Record<string, string>;
  /** The server can hold metadata (2.10+). */
  markers: boolean;
  me: string;
  /** The resource carries the adopt annotation. */
  adopt: boolean;
  /**
   * The resource was managing objects before markers existed (it carries our finalizer, which the
   * operator used to add to every resource it reconciled): its unmarked object is taken as its own.
   */
  legacy: boolean;
  /** True when the resource a marker names is known to be gone (so its object is orphaned). */
  ownerGone(owner: string): boolean;
}

export function decideOwnership(f: OwnershipFacts): Ownership {
  if (!f.exists) return { state: 'absent' };
  if (!f.markers) return { state: 'untracked' };
  const owner = f.metadata?.[OWNER_KEY];
  if (owner === f.me) return { state: 'ours' };
  if (owner === OPERATOR_MARKER) return { state: 'adopt', from: owner };
  if (owner) return f.adopt && f.ownerGone(owner) ? { state: 'adopt', from: owner } : { state: 'foreign', owner };
  return f.adopt || f.legacy ? { state: 'adopt' } : { state: 'unmarked' };
}

/** May this resource write to (or delete) the object? */
export const mayManage = (o: Ownership): boolean => o.state !== 'foreign' && o.state !== 'unmarked';

export const isAdoptRequested = (annotations: Record<string, string> | undefined): boolean => annotations?.[ADOPT_ANNOTATION] === 'true';

/** The spec with the marker in its metadata, so the plan creates or keeps it (only where the server has metadata). */
export function withMarker<S extends { metadata?: Record<string, string> }>(spec: S, marker: string | undefined): S {
  if (marker === undefined) return spec;
  return { ...spec, metadata: { ...(spec.metadata ?? {}), [OWNER_KEY]: marker } };
}

/** Why a resource may not manage the object, for its Ready condition. */
export function ownershipProblem(o: Ownership, what: string): { reason: string; message: string } | undefined {
  if (o.state === 'foreign') {
    return {
      reason: 'OwnedElsewhere',
      message: `${what} belongs to the resource ${o.owner} (metadata ${OWNER_KEY}); one object is managed by one resource`,
    };
  }
  if (o.state === 'unmarked') {
    return {
      reason: 'NotOwned',
      message:
        `${what} exists and was not created by this resource: annotate the resource with ${ADOPT_ANNOTATION}=true to take it over ` +
        '(it is then changed to the spec, and deleted with the resource unless preventDelete)',
    };
  }
  return undefined;
}
