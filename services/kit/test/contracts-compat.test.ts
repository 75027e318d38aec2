/**
 * `npm run schemas:check`: the catalogue against the released schemas in
 * services/kit/schemas/released/. A breaking edit of a released version fails with the list; the
 * current catalogue (v1s unchanged, orders.created v2 new) passes.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import { afterAll, describe, expect, test } from 'vitest';
import { EVENT_SCHEMAS, OrdersCreatedV1 } from '@orderflow/kit';
import { renderJsonSchemas, schemasDir } from '../src/events/export-json-schema.js';
import { checkCompatibility, diffSchemas, readSchemaDir, type Change } from '../src/events/schema-compat.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = fileURLToPath(new URL('../src/events/schema-compat.ts', import.meta.url));
const releasedDir = join(schemasDir(), 'released');
const released = readSchemaDir(releasedDir);
const tmp = mkdtempSync(join(tmpdir(), 'orderflow-schemas-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function runCheck(...args: string[]) {
  const r = spawnSync(join(root, 'node_modules/.bin/tsx'), [cli, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

type Json = { [k: string]: unknown };
const releasedV1 = () =>
  JSON.parse(released.get('orders.created.v1.json')!) as Json & { properties: Record<string, Json>; required: string[] };
const changes = (edit: (s: ReturnType<typeof releasedV1>) => void): Change[] => {
  const s = releasedV1();
  edit(s);
  return diffSchemas(releasedV1(), s);
};

describe('schema compatibility check', () => {
  test('the released snapshot holds every v1 and the current catalogue passes (v2 listed as new)', () => {
    expect([...released.keys()]).toEqual(
      Object.keys(EVENT_SCHEMAS)
        .map((t) => `${t}.v1.json`)
        .sort(),
    );
    const { findings, unreleased } = checkCompatibility(released, renderJsonSchemas());
    expect(findings).toEqual([]);
    expect(unreleased).toEqual(['orders.created.v2.json']);
    const r = runCheck();
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('8 released event schemas unchanged');
  });

  test('a breaking edit of orders.created v1 in a temp copy of the catalogue fails with the list (exit 1)', () => {
    const dir = join(tmp, 'catalogue');
    cpSync(schemasDir(), dir, { recursive: true });
    // Rename customerId → customer_id and drop "JPY" from the currencies: three breaking changes.
    const file = join(dir, 'orders.created.v1.json');
    const s = JSON.parse(readFileSync(file, 'utf8')) as Json & {
      properties: Record<string, Json & { enum?: string[] }>;
      required: string[];
    };
    s.properties.customer_id = s.properties.customerId!;
    delete s.properties.customerId;
    s.required = s.required.map((k) => (k === 'customerId' ? 'customer_id' : k));
    s.properties.currency!.enum = s.properties.currency!.enum!.filter((c) => c !== 'JPY');
    writeFileSync(file, JSON.stringify(s, null, 2));

    const r = runCheck('--catalogue', dir, '--released', releasedDir);
    expect(r.code).toBe(1);
    expect(r.out).toContain('3 breaking changes to released event schemas');
    expect(r.out).toContain('orders.created v1: customerId: required field removed or renamed');
    expect(r.out).toContain('orders.created v1: customer_id: required field added');
    expect(r.out).toContain('orders.created v1: currency: enum value "JPY" removed [narrowed]');
    // The untouched copy of the same catalogue passes.
    const clean = join(tmp, 'clean');
    cpSync(schemasDir(), clean, { recursive: true });
    expect(runCheck('--catalogue', clean, '--released', releasedDir).code).toBe(0);
  });

  test('removing a released version fails too', () => {
    const catalogue = renderJsonSchemas();
    catalogue.delete('payments.failed.v1.json');
    expect(checkCompatibility(released, catalogue).findings).toEqual([
      expect.objectContaining({ file: 'payments.failed.v1.json', message: expect.stringMatching(/released version removed/) }),
    ]);
  });

  test('an edit made in the valibot source (a temp copy of the catalogue) is caught', () => {
    // customerId made optional: consumers on the released v1 require it.
    const edited = {
      ...EVENT_SCHEMAS,
      'orders.created': {
        ...EVENT_SCHEMAS['orders.created'],
        v1: v.strictObject({ ...OrdersCreatedV1.entries, customerId: v.optional(v.string()) }),
      },
    };
    const { findings } = checkCompatibility(released, renderJsonSchemas(edited));
    expect(findings.map((f) => `${f.path}: ${f.message} [${f.direction}]`)).toEqual([
      'customerId: field became optional (consumers on the released schema require it) [widened]',
      'customerId: minLength 1 → none [widened]',
      'customerId: maxLength 128 → none [widened]',
    ]);
  });

  test.each<[string, (s: ReturnType<typeof releasedV1>) => void, Array<Partial<Change>>]>([
    [
      'required field removed',
      (s) => (delete s.properties.customerId, (s.required = s.required.filter((k) => k !== 'customerId'))),
      [{ path: 'customerId', direction: 'changed' }],
    ],
    [
      'required field added',
      (s) => ((s.properties.channel = { type: 'string' }), s.required.push('channel')),
      [{ path: 'channel', direction: 'changed' }],
    ],
    [
      'optional field added (strict readers reject it)',
      (s) => (s.properties.note = { type: 'string' }),
      [{ path: 'note', direction: 'widened' }],
    ],
    [
      'type narrowed',
      (s) => ((s.properties.items as Json & { items: { properties: Record<string, Json> } }).items.properties.quantity!.type = 'string'),
      [
        { path: 'items[].quantity', direction: 'narrowed' },
        { path: 'items[].quantity', direction: 'widened' },
      ],
    ],
    [
      'integer → number widened',
      (s) => ((s.properties.items as Json & { items: { properties: Record<string, Json> } }).items.properties.quantity!.type = 'number'),
      [{ path: 'items[].quantity', direction: 'widened', message: 'type integer → number (now accepts number)' }],
    ],
    [
      'bound tightened',
      (s) => (s.properties.items!.maxItems = 10),
      [{ path: 'items', direction: 'narrowed', message: 'maxItems 100 → 10' }],
    ],
    [
      'enum value added',
      (s) => (s.properties.currency!.enum = [...(s.properties.currency!.enum as string[]), 'SEK']),
      [{ path: 'currency', direction: 'widened', message: 'enum value "SEK" added' }],
    ],
    ['format added', (s) => (s.properties.customerId!.format = 'email'), [{ path: 'customerId', direction: 'narrowed' }]],
    ['strictness dropped', (s) => (s.additionalProperties = true), [{ path: '(root)', direction: 'widened' }]],
    ['title and description only', (s) => ((s.title = 'Order created'), (s.description = 'docs')), []],
  ])('%s', (_name, edit, expected) => {
    const found = changes(edit);
    expect(found).toHaveLength(expected.length);
    for (const e of expected) expect(found).toContainEqual(expect.objectContaining(e));
  });
});
