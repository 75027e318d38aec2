/** Just enough of the Prometheus text format to read the services' saga metrics. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const v = m[3]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Cumulative bucket counts of one histogram series, `le` ascending (the last is +Inf). */
export type Buckets = Array<{ le: number; count: number }>;

export function histogramBuckets(samples: Sample[], name: string, match: Record<string, string> = {}): Buckets {
  const sums = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket`) continue;
    if (!Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    sums.set(le, (sums.get(le) ?? 0) + s.value);
  }
  return [...sums.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/** later − earlier, bucket by bucket (a counter reset — restarted service — gives `later`). */
export function bucketDelta(later: Buckets, earlier: Buckets | undefined): Buckets {
  if (!earlier) return later;
  const before = new Map(earlier.map((b) => [b.le, b.count]));
  const d = later.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) }));
  return d.some((b) => b.count < 0) ? later : d;
}

/**
 * The q-quantile (0..1) of a histogram, interpolated linearly within the bucket the way
 * PromQL's histogram_quantile does; undefined when the histogram is empty. A quantile in the
 * +Inf bucket is reported as the highest finite bound.
 */
export function histogramQuantile(q: number, buckets: Buckets): number | undefined {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + (b.le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Sum of a counter's series grouped by one label. */
export function sumBy(samples: Sample[], name: string, label: string, match: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    if (!Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    const k = s.labels[label] ?? '';
    out[k] = (out[k] ?? 0) + s.value;
  }
  return out;
}
