/**
 * A service's /metrics for assertions: the samples (parsed by the kit's one Prometheus text
 * reader), totals over label sets, presence of a metric.
 */
import { parsePrometheus, type Sample } from '../prometheus-text.js';

export interface MetricsPage {
  samples: Sample[];
  /**
   * Sum of the series named `name`, optionally only those whose label text passes `where`; the
   * label text reads as in the exposition, e.g. `{result="handled",subject="orders.created"}`.
   */
  total(name: string, where?: (labels: string) => boolean): number;
  /** At least one series of that name. */
  has(name: string): boolean;
}

const labelText = (labels: Record<string, string>) =>
  Object.keys(labels).length
    ? `{${Object.entries(labels)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(',')}}`
    : '';

export function parseMetrics(text: string): MetricsPage {
  const samples = parsePrometheus(text);
  const named = (name: string) => samples.filter((s) => s.name === name);
  return {
    samples,
    total: (name, where = () => true) =>
      named(name)
        .filter((s) => where(labelText(s.labels)))
        .reduce((sum, s) => sum + s.value, 0),
    has: (name) => named(name).length > 0,
  };
}

/** GET <url>/metrics, parsed; throws (with the status) on anything but 200. */
export async function scrapeMetrics(url: string): Promise<MetricsPage> {
  const r = await fetch(`${url}/metrics`);
  if (!r.ok) throw new Error(`${url}/metrics answered ${r.status}`);
  return parseMetrics(await r.text());
}
