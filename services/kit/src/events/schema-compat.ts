/**
 * Compatibility check of the event schema catalogue against the released schemas kept in the repo
 * (services/kit/schemas/released/). `npm run schemas:check` fails (exit 1, with the list) when a
 * released version changed in a way that breaks either side:
 *
 * - **narrowed** — an event valid under the released schema may fail the new one: replaying the
 *   stream's history, or events from producers not yet upgraded, would be dead-lettered (a removed
 *   or renamed required field, an added required field, a narrowed type, an enum value removed,
 *   a tighter bound or format);
 * - **widened** — an event valid under the new schema may fail the released one: consumers still
 *   running the released schema dead-letter it. Payloads are strict (`strictObject`, so
 *   `additionalProperties: false`), which makes even an added optional field or enum value
 *   breaking for them.
 *
 * So a released version is frozen in practice; a new version (plus dual publishing and an
 * upcaster, docs/contracts.md) is the way to change a contract. Versions not released yet are
 * listed and pass. `--release` freezes them: copies them into released/ (never overwrites).
 *
 *   schema-compat [--catalogue <dir>] [--released <dir>] [--release]
 *
 * Without --catalogue the catalogue is rendered from the valibot schemas (the source of truth)
 * and the generated files in schemas/ must be current too.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { renderJsonSchemas, schemasDir } from './export-json-schema.js';

type Node = { [k: string]: unknown };
export type Direction = 'narrowed' | 'widened' | 'changed';
export interface Change {
  path: string;
  direction: Direction;
  message: string;
}
export interface Finding extends Change {
  file: string;
}

const IGNORED = new Set(['$schema', 'title', 'description', '$comment', 'examples', 'default']);
const LOWER = ['minLength', 'minimum', 'exclusiveMinimum', 'minItems', 'minProperties'];
const UPPER = ['maxLength', 'maximum', 'exclusiveMaximum', 'maxItems', 'maxProperties'];
const EXACT = ['format', 'pattern', 'multipleOf', 'const'];
const HANDLED = new Set([
  ...IGNORED,
  ...LOWER,
  ...UPPER,
  ...EXACT,
  'type',
  'enum',
  'properties',
  'required',
  'additionalProperties',
  'items',
]);

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && !Array.isArray(x);
const show = (x: unknown) => JSON.stringify(x);
const types = (n: Node): string[] | undefined => (n.type === undefined ? undefined : ([] as string[]).concat(n.type as string | string[]));
/** Does type `t` accept everything type list `of` includes? ("number" covers "integer") */
const covers = (list: string[], t: string) => list.includes(t) || (t === 'integer' && list.includes('number'));

/** Changes from released schema `a` to current schema `b`, at JSON path `path`. */
export function diffSchemas(a: unknown, b: unknown, path = '(root)'): Change[] {
  const out: Change[] = [];
  const add = (direction: Direction, message: string, at = path) => out.push({ path: at, direction, message });
  if (!isNode(a) || !isNode(b)) {
    if (!isDeepStrictEqual(a, b)) add('changed', `schema ${show(a)} → ${show(b)}`);
    return out;
  }

  const ta = types(a);
  const tb = types(b);
  if (!ta && tb) add('narrowed', `type restricted to ${tb.join('|')}`);
  else if (ta && !tb) add('widened', `type restriction ${ta.join('|')} removed`);
  else if (ta && tb) {
    const lost = ta.filter((t) => !covers(tb, t));
    const gained = tb.filter((t) => !covers(ta, t));
    if (lost.length) add('narrowed', `type ${ta.join('|')} → ${tb.join('|')} (no longer accepts ${lost.join(', ')})`);
    if (gained.length) add('widened', `type ${ta.join('|')} → ${tb.join('|')} (now accepts ${gained.join(', ')})`);
  }

  if (a.enum !== undefined || b.enum !== undefined) {
    const ea = a.enum as unknown[] | undefined;
    const eb = b.enum as unknown[] | undefined;
    if (!ea) add('narrowed', `values restricted to ${show(eb)}`);
    else if (!eb) add('widened', `value restriction ${show(ea)} removed`);
    else {
      const removed = ea.filter((x) => !eb.some((y) => isDeepStrictEqual(x, y)));
      const added = eb.filter((x) => !ea.some((y) => isDeepStrictEqual(x, y)));
      if (removed.length) add('narrowed', `enum value${removed.length > 1 ? 's' : ''} ${removed.map(show).join(', ')} removed`);
      if (added.length) add('widened', `enum value${added.length > 1 ? 's' : ''} ${added.map(show).join(', ')} added`);
    }
  }

  for (const k of LOWER) {
    const [x, y] = [a[k] as number | undefined, b[k] as number | undefined];
    if (x === y) continue;
    if (x === undefined || (y !== undefined && y > x)) add('narrowed', `${k} ${x ?? 'none'} → ${y}`);
    else add('widened', `${k} ${x} → ${y ?? 'none'}`);
  }
  for (const k of UPPER) {
    const [x, y] = [a[k] as number | undefined, b[k] as number | undefined];
    if (x === y) continue;
    if (x === undefined || (y !== undefined && y < x)) add('narrowed', `${k} ${x ?? 'none'} → ${y}`);
    else add('widened', `${k} ${x} → ${y ?? 'none'}`);
  }
  for (const k of EXACT) {
    const [x, y] = [a[k], b[k]];
    if (isDeepStrictEqual(x, y)) continue;
    if (x === undefined) add('narrowed', `${k} ${show(y)} added`);
    else if (y === undefined) add('widened', `${k} ${show(x)} removed`);
    else add('changed', `${k} ${show(x)} → ${show(y)}`);
  }

  // Objects: fields and strictness.
  const pa = isNode(a.properties) ? a.properties : {};
  const pb = isNode(b.properties) ? b.properties : {};
  const ra = new Set((a.required as string[] | undefined) ?? []);
  const rb = new Set((b.required as string[] | undefined) ?? []);
  const closedA = a.additionalProperties === false;
  const closedB = b.additionalProperties === false;
  const child = (k: string) => (path === '(root)' ? k : `${path}.${k}`);
  for (const k of Object.keys(pa)) {
    if (k in pb) continue;
    if (ra.has(k))
      add(
        'changed',
        `required field removed or renamed (released events carry ` +
          `it${closedB ? ' and the new schema rejects it' : ''}; consumers on the released schema ` +
          `require it)`,
        child(k),
      );
    else if (closedB) add('narrowed', 'optional field removed (released events that carry it are rejected)', child(k));
  }
  for (const k of Object.keys(pb)) {
    if (k in pa) continue;
    if (rb.has(k))
      add(
        closedA ? 'changed' : 'narrowed',
        `required field added (released events lack it${closedA ? '; consumers on the released schema reject it' : ''})`,
        child(k),
      );
    else if (closedA) add('widened', 'optional field added (consumers on the released schema reject events that carry it)', child(k));
  }
  for (const k of Object.keys(pa)) {
    if (!(k in pb)) continue;
    if (!ra.has(k) && rb.has(k)) add('narrowed', 'field became required', child(k));
    if (ra.has(k) && !rb.has(k)) add('widened', 'field became optional (consumers on the released schema require it)', child(k));
    out.push(...diffSchemas(pa[k], pb[k], child(k)));
  }
  const apa = a.additionalProperties;
  const apb = b.additionalProperties;
  if (isNode(apa) || isNode(apb)) {
    if (!isDeepStrictEqual(apa, apb)) add('changed', `additionalProperties ${show(apa)} → ${show(apb)}`);
  } else if (!closedA && closedB) add('narrowed', 'additional properties no longer allowed');
  else if (closedA && !closedB) add('widened', 'additional properties now allowed (consumers on the released schema reject them)');

  if (a.items !== undefined || b.items !== undefined) out.push(...diffSchemas(a.items ?? {}, b.items ?? {}, `${path}[]`));

  // Anything else (anyOf, oneOf, $ref…) is not analysed: any difference counts as breaking.
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (HANDLED.has(k)) continue;
    if (!isDeepStrictEqual(a[k], b[k])) add('changed', `${k} ${show(a[k])} → ${show(b[k])} (not analysed; treated as breaking)`);
  }
  return out;
}

export interface CheckResult {
  findings: Finding[];
  /** Catalogue files with no released counterpart: new versions, free to change until released. */
  unreleased: string[];
}

/** Compares every released schema file with the catalogue's file of the same name. */
export function checkCompatibility(released: ReadonlyMap<string, string>, catalogue: ReadonlyMap<string, string>): CheckResult {
  const findings: Finding[] = [];
  for (const [file, text] of [...released].sort(([x], [y]) => x.localeCompare(y))) {
    const now = catalogue.get(file);
    if (now === undefined) {
      findings.push({
        file,
        path: '(root)',
        direction: 'changed',
        message: 'released version removed from the catalogue (the stream still holds such events)',
      });
      continue;
    }
    for (const c of diffSchemas(JSON.parse(text), JSON.parse(now))) findings.push({ file, ...c });
  }
  const unreleased = [...catalogue.keys()].filter((f) => !released.has(f)).sort();
  return { findings, unreleased };
}

export function readSchemaDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.json'))
    .sort())
    out.set(f, readFileSync(join(dir, f), 'utf8'));
  return out;
}

export function formatFinding(f: Finding): string {
  const name = f.file.replace(/\.json$/, '').replace(/\.(v\d+)$/, ' $1');
  return `${name}: ${f.path}: ${f.message} [${f.direction}]`;
}

/** The CLI; returns the exit code. */
export function main(argv: readonly string[]): number {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const releasedDir = arg('--released') ?? join(schemasDir(), 'released');
  const catalogueDir = arg('--catalogue');
  const catalogue = catalogueDir ? readSchemaDir(catalogueDir) : renderJsonSchemas();
  const problems: string[] = [];
  if (!catalogueDir) {
    const onDisk = readSchemaDir(schemasDir());
    for (const [file, text] of catalogue)
      if (onDisk.get(file) !== text) problems.push(`schemas/${file} is stale or missing: run \`npm run schemas\``);
  }
  const released = readSchemaDir(releasedDir);
  const { findings, unreleased } = checkCompatibility(released, catalogue);

  if (argv.includes('--release')) {
    if (findings.length === 0) {
      mkdirSync(releasedDir, { recursive: true });
      for (const f of unreleased) writeFileSync(join(releasedDir, f), catalogue.get(f)!);
      console.error(`released ${unreleased.length ? unreleased.join(', ') : 'nothing new'} into ${releasedDir}`);
      return problems.length ? 1 : 0;
    }
  }
  for (const p of problems) console.error(`✗ ${p}`);
  if (findings.length) {
    console.error(`✗ ${findings.length} breaking change${findings.length > 1 ? 's' : ''} to released event schemas (${releasedDir}):`);
    for (const f of findings) console.error(`  - ${formatFinding(f)}`);
    console.error('  A released version is frozen: add a new version instead (docs/contracts.md).');
  }
  if (unreleased.length)
    console.error(`  new, not yet released: ${unreleased.join(', ')} (freeze with \`npm run schemas:release -w services/kit\`)`);
  if (findings.length || problems.length) return 1;
  console.error(`✓ ${released.size} released event schemas unchanged`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
