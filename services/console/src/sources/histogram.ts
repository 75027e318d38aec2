/**
 * Histogram arithmetic over scraped samples (the kit reads the text format): buckets of one
 * series, their change between two scrapes, and quantiles the way PromQL computes them.
 */
import { labelsMatch, type Sample } from '@orderflow/kit';

/** Cumulative bucket counts of one histogram series, `le` ascending (the last is +Inf). */
export type Buckets = Array<{ le: number; count: number }>;

export function histogramBuckets(samples: Sample[], name: string, match: Record<string, string> = {}): Buckets {
  const sums = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !labelsMatch(s.labels, match)) continue;
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
