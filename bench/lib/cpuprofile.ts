/**
 * Summarises a V8 .cpuprofile (what `node --cpu-prof` writes): self time per function and per
 * package, from the samples and their time deltas.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  fn: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of samples not idle: how busy the process's main thread was. */
  busyPct: number;
  top: HotFunction[];
  byPackage: Array<{ pkg: string; selfMs: number; pct: number }>;
}

/** node_modules/<pkg> (scoped too), the workspace package, node internals, or a V8 pseudo-frame. */
export function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const svc = /services\/([^/]+)\//.exec(url);
  if (svc) return `@orderflow/${svc[1]}`;
  return url.split('/').slice(-2).join('/');
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const s = url.indexOf('services/');
  if (s >= 0) return url.slice(s);
  return url.replace(/^file:\/\//, '');
}

/**
 * `fromUs`: count only samples taken after this monotonic time in µs (V8 stamps samples with the
 * same CLOCK_MONOTONIC as process.hrtime), so start-up and module loading stay out of it.
 */
export function summarise(path: string, topN = 15, fromUs = 0): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs) continue;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  let total = 0;
  let idle = 0;
  const fns = new Map<string, HotFunction>();
  const pkgs = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const name = functionName || '(anonymous)';
    const key = `${name}@${url}:${lineNumber}`;
    const f = fns.get(key) ?? { fn: name, where: url ? `${shortUrl(url)}:${lineNumber + 1}` : '', selfMs: 0, pct: 0 };
    f.selfMs += us / 1000;
    fns.set(key, f);
    const pkg = packageOf(url, name);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us / 1000);
  }
  const busy = (total - idle) / 1000;
  const pct = (ms: number) => Math.round((1000 * ms) / Math.max(busy, 1e-9)) / 10;
  const top = [...fns.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN)
    .map((f) => ({ ...f, selfMs: Math.round(f.selfMs), pct: pct(f.selfMs) }));
  const byPackage = [...pkgs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([pkg, ms]) => ({ pkg, selfMs: Math.round(ms), pct: pct(ms) }));
  return { totalMs: Math.round(total / 1000), busyPct: Math.round((1000 * (total - idle)) / Math.max(total, 1)) / 10, top, byPackage };
}
