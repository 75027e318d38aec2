/**
 * The table behind the per-field reconcile tests (Stream, Consumer, and any other kind reconciled
 * the same way): each case is created with its field, read back, resynced without a write, then
 * changed in place or refused naming the field the server fixes; a field the server is too old for
 * is refused before anything is created, with the version it needs.
 */
import { expect, it } from 'vitest';
import { atLeast, parseVersion, type ApplyResult, type Version } from '../../src/reconcile/index.js';

export interface FieldCase<Spec> {
  name: string;
  /** The first server that has the field ("2.10.0"); older ones must refuse it. */
  since?: string;
  spec: Partial<Spec>;
  /** What the server's config must then hold. */
  holds: Record<string, unknown>;
  /** A second spec: applied in place… */
  change?: Partial<Spec>;
  changed?: Record<string, unknown>;
  /** …or refused by the planner, naming this JetStream field… */
  fixed?: string;
  /** …on servers older than this one only. */
  fixedBefore?: string;
}

/** How one case reaches its resource on the server. */
export interface FieldCaseTarget<Spec> {
  /** The connected server's version (known once the file's beforeAll ran). */
  server: () => Version;
  /** The whole spec of this case's resource from a case's partial spec. */
  spec: (extra: Partial<Spec>) => Spec;
  reconcile: (spec: Spec) => Promise<ApplyResult>;
  /** The resource as the server holds it; undefined when absent. */
  read: () => Promise<{ config: object } | undefined>;
  /** A case's expected config as this resource holds it (names localised to the case). */
  holds?: (h: Record<string, unknown>) => Record<string, unknown>;
  /** Runs a reconcile and fails the test if it made a create or update call. */
  withoutWrites: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** The two tests of one case; call inside the case's describe block. */
export function fieldCaseTests<Spec>(c: FieldCase<Spec>, t: FieldCaseTarget<Spec>): void {
  const holds = t.holds ?? ((h) => h);
  const has = (): boolean => !c.since || atLeast(t.server(), parseVersion(c.since)!);
  const noop = async (spec: Spec) => {
    const again = await t.withoutWrites(() => t.reconcile(spec));
    expect(again, again.reasons.join('; ')).toMatchObject({ action: 'noop', outcome: 'unchanged' });
  };

  it('reconciles into JetStream, or is refused naming the server version it needs', async () => {
    const r = await t.reconcile(t.spec(c.spec));
    if (!has()) {
      expect(r).toMatchObject({ action: 'refuse', outcome: 'refused' });
      expect(r.reasons.join('\n')).toContain(`needs nats-server ${c.since} or newer (the connected server is ${t.server().join('.')})`);
      expect(await t.read()).toBeUndefined();
      return;
    }
    expect(r.outcome, r.reasons.join('; ')).toBe('created');
    expect((await t.read())?.config).toMatchObject(holds(c.holds));
    // Resync: what the server holds (normalised) matches the spec.
    await noop(t.spec(c.spec));
  });

  it.runIf(c.change !== undefined)('a change is applied in place, or refused naming the field the server fixes', async () => {
    if (!has()) return;
    const change = t.spec(c.change!);
    if (c.fixed && (!c.fixedBefore || !atLeast(t.server(), parseVersion(c.fixedBefore)!))) {
      const before = (await t.read())!;
      const r = await t.withoutWrites(() => t.reconcile(change));
      expect(r).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
      expect(r.reasons.join('\n')).toMatch(new RegExp(`^${c.fixed}: .* cannot be changed in place`, 'm'));
      expect((await t.read())?.config).toEqual(before.config);
      return;
    }
    const r = await t.reconcile(change);
    expect(r.outcome, r.reasons.join('; ')).toBe('updated');
    expect((await t.read())?.config).toMatchObject(holds(c.changed ?? {}));
    await noop(change);
  });
}

/** A value in a spec, and the value the server then holds when it stores it otherwise ("10s" → 10e9). */
type Value = readonly [spec: unknown, held?: unknown];

/**
 * The common case: one spec field stored as one JetStream field, set to a value, then changed to
 * another (`fixed`: a change the server refuses, naming that JetStream field). A held value that is
 * not given is the spec's own.
 */
export function oneField<Spec>(
  field: keyof Spec & string,
  jsField: string,
  first: Value,
  next: Value,
  o: { name?: string; since?: string; fixed?: true; fixedBefore?: string } = {},
): FieldCase<Spec> {
  const held = ([v, h]: Value): Record<string, unknown> => ({ [jsField]: h === undefined ? v : h });
  return {
    name: o.name ?? field,
    ...(o.since ? { since: o.since } : {}),
    spec: { [field]: first[0] } as Partial<Spec>,
    holds: held(first),
    change: { [field]: next[0] } as Partial<Spec>,
    changed: held(next),
    ...(o.fixed ? { fixed: jsField } : {}),
    ...(o.fixedBefore ? { fixedBefore: o.fixedBefore } : {}),
  };
}
