/** Validation helpers: Kubernetes OpenAPI schemas (kubernetes-models) and CRD schemas (ajv). */
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import YAML from 'yaml';
import { Ajv, type ValidateFunction } from 'ajv';
import * as models from 'kubernetes-models';

export type Dict = Record<string, unknown>;

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: Dict): { validate(): void };
}

function isModelClass(v: unknown): v is ModelClass {
  return (
    typeof v === 'function' &&
    typeof (v as { apiVersion?: unknown }).apiVersion === 'string' &&
    typeof (v as { kind?: unknown }).kind === 'string'
  );
}

/** apiVersion/kind -> kubernetes-models class, built from every group the package exports. */
const MODELS = new Map<string, ModelClass>();
function collect(ns: unknown, depth: number): void {
  if (depth > 3 || !ns || typeof ns !== 'object') return;
  for (const v of Object.values(ns as Record<string, unknown>)) {
    if (isModelClass(v)) {
      if (!v.kind.endsWith('List')) MODELS.set(`${v.apiVersion}/${v.kind}`, v);
    } else collect(v, depth + 1);
  }
}
collect(models, 0);

export function knownKind(doc: Dict): boolean {
  return MODELS.has(`${String(doc.apiVersion)}/${String(doc.kind)}`);
}

/** Throws with the validator's message when doc violates the Kubernetes schema of its kind. */
export function validateK8s(doc: Dict): void {
  const cls = MODELS.get(`${String(doc.apiVersion)}/${String(doc.kind)}`);
  if (!cls) throw new Error(`unknown apiVersion/kind ${String(doc.apiVersion)}/${String(doc.kind)}`);
  new cls(doc).validate();
}

export function yamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(f)) out.push(p);
  }
  return out;
}

export function loadDocs(file: string, root: string): { file: string; doc: Dict }[] {
  const out: { file: string; doc: Dict }[] = [];
  for (const d of YAML.parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (d.errors.length) throw new Error(`${relative(root, file)}: ${d.errors[0]!.message}`);
    const js = d.toJS() as unknown;
    if (js === null || js === undefined) continue;
    out.push({ file: relative(root, file), doc: js as Dict });
  }
  return out;
}

/** Validators for custom resources from CRDs (spec.versions[].schema.openAPIV3Schema). */
export function crdValidators(crds: Dict[]): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const out = new Map<string, ValidateFunction>();
  for (const crd of crds) {
    const spec = crd.spec as { group: string; names: { kind: string }; versions: { name: string; schema?: { openAPIV3Schema?: Dict } }[] };
    for (const v of spec.versions) {
      const schema = v.schema?.openAPIV3Schema;
      if (!schema) continue;
      out.set(`${spec.group}/${v.name}/${spec.names.kind}`, ajv.compile(stripK8sExtensions(schema) as Dict));
    }
  }
  return out;
}

/** Drops x-kubernetes-* keywords ajv does not know (strict:false ignores them anyway) and keeps the rest. */
function stripK8sExtensions(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(stripK8sExtensions);
  if (s && typeof s === 'object') {
    const o: Dict = {};
    for (const [k, v] of Object.entries(s as Dict)) if (!k.startsWith('x-kubernetes-')) o[k] = stripK8sExtensions(v);
    return o;
  }
  return s;
}
