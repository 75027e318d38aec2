/**
 * One row of the planner's tables: a JetStream config field, how to read it in the form the
 * server normalises it to, which server knows it, and whether the server lets it change in
 * place. The same `value` function reads the desired config and the server's, so a value the
 * server rewrites (max_bytes 0 → -1, max_ack_pending 0 → 1000, "…00.000+01:00" → "…00+01:00")
 * compares equal to what was sent and never causes an update on every resync.
 */
import { atLeast, showVersion, type Version } from './server-version.js';
import { formatNanos } from './duration.js';

/** A refusal text when actual → desired may not happen in place, else undefined. */
export type ChangeCheck = (actual: unknown, desired: unknown, server: Version) => string | undefined;

export interface FieldRule<C, X> {
  /** JetStream config key (also the key sent), e.g. `max_age`. */
  field: string;
  /** The spec field it comes from, for messages, e.g. `maxAge`. */
  spec: string;
  /** The first nats-server that knows the field; older servers are neither sent it nor compared on it. */
  since?: Version;
  /** The value in its normalised form; the same function for the desired config and the server's. */
  value: (c: C, ctx: X) => unknown;
  /** Undefined: may change in place. */
  change?: ChangeCheck;
  /** Fixed at creation: never part of an update request (the server's own value stays). */
  createOnly?: boolean;
  /** How to print a value in a reason. */
  show?: (v: unknown) => string;
}

export interface FieldChange {
  /** JetStream config field, e.g. `max_age`. */
  field: string;
  actual: unknown;
  desired: unknown;
  /** True when the server refuses this change in place. */
  immutable: boolean;
  /** Why it is refused (set with immutable). */
  refusal?: string;
}

export const NEWEST: Version = [Number.MAX_SAFE_INTEGER, 0, 0];

/** Refused by every server. */
export const immutable: ChangeCheck = () => 'fixed when it is created';

/** May only move to `to` (sealed, deny_delete, allow_msg_ttl…): the way back is refused. */
export const oneWay =
  (to: unknown, what: string): ChangeCheck =>
  (_a, d) =>
    d === to ? undefined : `${what} cannot be undone`;

export const supported = (r: { since?: Version }, server: Version): boolean => !r.since || atLeast(server, r.since);

export function diff<C, X>(rules: readonly FieldRule<C, X>[], actual: C, desired: C, ctx: X, server: Version): FieldChange[] {
  const out: FieldChange[] = [];
  for (const r of rules) {
    if (!supported(r, server)) continue;
    const a = r.value(actual, ctx);
    const d = r.value(desired, ctx);
    if (JSON.stringify(a) === JSON.stringify(d)) continue;
    const refusal = r.change?.(a, d, server);
    out.push({ field: r.field, actual: a, desired: d, immutable: refusal !== undefined, ...(refusal ? { refusal } : {}) });
  }
  return out;
}

export function describe<C, X>(c: FieldChange, rules: readonly FieldRule<C, X>[]): string {
  const show = rules.find((r) => r.field === c.field)?.show ?? ((v: unknown) => JSON.stringify(v));
  const base = `${c.field}: ${show(c.actual)} → ${show(c.desired)}`;
  return c.immutable ? `${base} cannot be changed in place (${c.refusal}); revert the spec or delete and recreate by hand` : base;
}

// ---- normalisers and printers shared by the stream and consumer tables ----

/** Limits where 0 (or nothing) means unlimited and the server reports -1. */
export const limit = (v: number | undefined): number => (v === undefined || v === null || v <= 0 ? -1 : v);
export const bool = (v: boolean | undefined): boolean => v === true;
export const str = (v: string | undefined): string => v ?? '';
export const num = (v: number | undefined): number => v ?? 0;
/** RFC 3339 text → epoch milliseconds, so two spellings of one instant compare equal. */
export const instant = (v: string | undefined): number | null => (v ? Date.parse(v) : null);
/** Metadata without the keys the server adds itself (`_nats.ver`, `_nats.level`…). */
export const userMetadata = (m: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(
    Object.entries(m ?? {})
      .filter(([k]) => !k.startsWith('_nats'))
      .sort(([a], [b]) => a.localeCompare(b)),
  );
export const sorted = (xs: readonly string[] | undefined): string[] => [...(xs ?? [])].sort();

export const showNanos = (v: unknown): string => (typeof v === 'number' ? formatNanos(v) : String(v));
export const showNanosOrUnlimited = (v: unknown): string => (v === 0 ? '0 (unlimited)' : showNanos(v));
export const showNanosList = (v: unknown): string => (Array.isArray(v) ? `[${v.map(showNanos).join(', ')}]` : String(v));
export const showInstant = (v: unknown): string => (typeof v === 'number' ? new Date(v).toISOString() : 'unset');

export const needs = (server: Version, min: Version, what: string): string | undefined =>
  atLeast(server, min) ? undefined : `nats-server ${showVersion(server)} refuses it; ${showVersion(min)} allows ${what}`;
