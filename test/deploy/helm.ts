/**
 * The real helm (v3, built by scripts/tools.sh into .tools/bin) for the deploy tests and
 * scripts/gen-k8s-manifests.ts: lint, template, and the documents it renders.
 *
 * The official nats chart (a dependency in Chart.yaml) cannot be downloaded on this machine: no
 * chart repository answers. Helm refuses to render a chart whose dependency is missing, even with
 * its condition off, so unless `helm dependency build` has put it into charts/orderflow/charts/,
 * the tests render a copy of the chart without that dependency entry. That covers every template
 * of ours (external-NATS mode, and our side of bundled mode: the NATS URL and NetworkPolicy
 * peers), not the nats chart's own output; test/deploy/nats-subchart.test.ts checks the value
 * paths we hand it against a description of its values.yaml instead.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { afterAll } from 'vitest';
import { ensureTools, toolBin } from '../support/tools.js';

export type Dict = Record<string, unknown>;

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const sourceChart = join(root, 'charts', 'orderflow');
export const HELM = toolBin('helm');

/**
 * Kubernetes version helm renders for: the kube-apiserver the tests run (tools/kubernetes/go.mod).
 * Passed explicitly because a helm built with plain `go build` (no Makefile ldflags) assumes
 * v1.20.0, below the chart's kubeVersion.
 */
export const KUBE_VERSION = (() => {
  const m = /^require k8s\.io\/kubernetes (v\d+\.\d+\.\d+)/m.exec(readFileSync(join(root, 'tools', 'kubernetes', 'go.mod'), 'utf8'));
  if (!m) throw new Error('tools/kubernetes/go.mod: no k8s.io/kubernetes requirement');
  return m[1]!;
})();

/** A failed helm command, with helm's own message. */
export class HelmError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(`helm ${args.join(' ')}: ${stderr.trim()}`, options);
  }
}

/** What both runners pass to helm: its homes kept out of the user's, and room for big renders. */
const helmOptions = (env: NodeJS.ProcessEnv | undefined) => ({
  encoding: 'utf8' as const,
  env: {
    ...process.env,
    HELM_CACHE_HOME: helmHome('cache'),
    HELM_CONFIG_HOME: helmHome('config'),
    HELM_DATA_HOME: helmHome('data'),
    ...env,
  },
  maxBuffer: 64 * 1024 * 1024,
});

/** lint reports its findings on stdout and only the verdict on stderr: keep both. */
const helmError = (args: string[], err: unknown, stdout: string | undefined, stderr: string | undefined): HelmError =>
  new HelmError(args, [stdout, stderr].filter((x) => x && x.trim()).join('\n') || String(err), { cause: err });

/** Runs helm; returns stdout, throws HelmError with stderr on a non-zero exit. */
export function helm(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  // A fresh checkout has no helm yet: build it (cached) as the control-plane tests do theirs.
  ensureTools(['helm']);
  try {
    return execFileSync(HELM, args, { ...helmOptions(opts.env), input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    throw helmError(args, e, err.stdout, err.stderr);
  }
}

/** helm without blocking the event loop (tests that run processes whose output we read meanwhile). */
export async function helmAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  ensureTools(['helm']);
  return new Promise((resolve, reject) => {
    execFile(HELM, args, { ...helmOptions(opts.env), timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      if (err) reject(helmError(args, err, stdout, stderr));
      else resolve(stdout);
    });
  });
}

let home: string | undefined;
/** Helm's cache/config/data kept out of the user's home (no repositories, no plugins). */
function helmHome(kind: string): string {
  home ??= scratch('orderflow-helm-home-');
  return join(home, kind);
}

const scratchDirs: string[] = [];
const removeScratch = () => {
  for (const d of scratchDirs.splice(0)) rmSync(d, { recursive: true, force: true });
};
// Removed when the importing test file ends: vitest ends its workers without an 'exit' event, so
// an exit hook alone left every rendered values file and chart copy behind in /tmp.
// (scripts/gen-k8s-manifests.ts uses this module outside vitest: there the exit hook does it.)
if (process.env.VITEST) afterAll(removeScratch);
process.once('exit', removeScratch);
function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(dir);
  return dir;
}

/** True when `helm dependency build` has put the nats chart into charts/orderflow/charts/. */
export function natsSubchartPresent(): boolean {
  const dir = join(sourceChart, 'charts');
  return existsSync(dir) && readdirSync(dir).some((f) => /^nats(-[\d.]+\.tgz)?$/.test(f));
}

let renderable: string | undefined;
/**
 * The chart directory helm can render here: charts/orderflow itself when its nats dependency is
 * present, else a copy without the dependency entry (see the header).
 */
export function chartPath(): string {
  if (renderable) return renderable;
  if (natsSubchartPresent()) return (renderable = sourceChart);
  const dir = join(scratch('orderflow-chart-'), 'orderflow');
  cpSync(sourceChart, dir, { recursive: true });
  const meta = YAML.parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Dict;
  delete meta.dependencies;
  writeFileSync(join(dir, 'Chart.yaml'), YAML.stringify(meta));
  return (renderable = dir);
}

/** Writes value sets to files for `-f` (JSON is YAML), in order: later ones win, as in helm. */
export function valuesArgs(values: (Dict | string)[]): string[] {
  const dir = scratch('orderflow-values-');
  return values.flatMap((v, i) => {
    if (typeof v === 'string') return ['-f', v];
    const file = join(dir, `values-${i}.json`);
    writeFileSync(file, JSON.stringify(v));
    return ['-f', file];
  });
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  /** Render crds/ too (`--include-crds`). */
  includeCrds?: boolean;
}

/** One rendered document and the chart file it came from (helm's `# Source:` line). */
export interface Rendered {
  source: string;
  doc: Dict;
  /** The document as helm printed it, without the `# Source:` line. */
  text: string;
}

/** `helm template` with these value sets (files or objects), as text. */
export function templateText(values: (Dict | string)[], opts: TemplateOptions = {}): string {
  return helm([
    'template',
    opts.release ?? 'orderflow',
    chartPath(),
    '--namespace',
    opts.namespace ?? 'default',
    '--kube-version',
    KUBE_VERSION,
    ...(opts.includeCrds ? ['--include-crds'] : []),
    ...valuesArgs(values),
  ]);
}

/** `helm template`, parsed: every non-empty document with its source template. */
export function template(values: (Dict | string)[], opts: TemplateOptions = {}): Rendered[] {
  return parseRendered(templateText(values, opts));
}

/** Documents of helm output, each with the template named by its `# Source:` comment. */
export function parseRendered(text: string): Rendered[] {
  const out: Rendered[] = [];
  // helm separates documents with a bare "---" line and starts each with "# Source: <chart>/<file>".
  for (const chunk of text.split(/^---[ \t]*$/m)) {
    const d = YAML.parseDocument(chunk);
    if (d.errors.length) throw new Error(`helm output does not parse: ${d.errors[0]!.message}\n${chunk.slice(0, 300)}`);
    const doc = d.toJS() as Dict | null;
    if (!doc) continue;
    const source = /^# Source: (\S+)/m.exec(chunk)?.[1] ?? '';
    const text = chunk.replace(/^# Source: .*\n/m, '').replace(/^\n+/, '');
    out.push({ source: source.replace(/^orderflow\//, ''), doc, text });
  }
  return out;
}

/** The docs only. */
export function render(values: (Dict | string)[], opts: TemplateOptions = {}): Dict[] {
  return template(values, opts).map((r) => r.doc);
}

/** helm's message when rendering these values fails; throws if it renders. */
export function renderFailure(values: (Dict | string)[]): string {
  try {
    templateText(values);
  } catch (e) {
    if (e instanceof HelmError) return e.stderr;
    throw e;
  }
  throw new Error(`helm template rendered values it should refuse: ${JSON.stringify(values)}`);
}

/** `helm lint --strict` with these value sets; returns helm's report, throws HelmError on a failure. */
export function lint(values: (Dict | string)[]): string {
  return helm(['lint', '--strict', '--kube-version', KUBE_VERSION, chartPath(), ...valuesArgs(values)]);
}

/** Deep merge for building test inputs (maps merge, everything else is replaced), like helm's -f layering. */
export function mergeValues(base: Dict, over: Dict): Dict {
  const out: Dict = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isMap(b) && isMap(v) ? mergeValues(b, v) : v;
  }
  return out;
}
const isMap = (v: unknown): v is Dict => !!v && typeof v === 'object' && !Array.isArray(v);

/** values.yaml of the chart. */
export const chartDefaults = (): Dict => YAML.parse(readFileSync(join(sourceChart, 'values.yaml'), 'utf8')) as Dict;
export const valuesFile = (name: string): string => join(sourceChart, name);

/** The NATS passwords values-nats-auth.yaml asks for (natsAuth.services.*.password), one a workload. */
export const NATS_AUTH_PASSWORDS: Dict = {
  natsAuth: {
    services: {
      orderService: { password: 'pw-order' },
      inventoryService: { password: 'pw-inventory' },
      paymentService: { password: 'pw-payment' },
      console: { password: 'pw-admin' },
      operator: { password: 'pw-admin' },
    },
  },
};
