/**
 * GET /metrics in the format the scraper asks for. The services' registry is an OpenMetrics one,
 * because only OpenMetrics carries exemplars (the trace id of an observation, so a latency
 * histogram links to Jaeger); Prometheus asks for it in its Accept header. Everyone else — the
 * console, curl, tests — gets the classic text format (0.0.4) they read today, converted from the
 * same rendering, so both always show the same samples.
 */
import { Registry } from 'prom-client';

export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE;
export const TEXT_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** True when the Accept header lists OpenMetrics (Prometheus' scrape does, before text/plain). */
export function acceptsOpenMetrics(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return type === 'application/openmetrics-text' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Index just past the label set of a sample line (`name{...}`), or of the name when it has none. */
function endOfSeries(line: string): number {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  if (brace === -1 || (space !== -1 && space < brace)) return space === -1 ? line.length : space;
  let quoted = false;
  for (let i = brace + 1; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '}' && !quoted) return i + 1;
  }
  return line.length;
}

/**
 * OpenMetrics text as prom-client writes it → the classic text format: no `# EOF`, no exemplars,
 * and counter families named with their `_total` samples (OpenMetrics names the family without it).
 */
export function openMetricsToText(om: string): string {
  const out: string[] = [];
  let help: { name: string; text: string } | undefined;
  for (const line of om.split('\n')) {
    if (line === '' || line === '# EOF') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      const [, kind, name, rest = ''] = meta;
      if (kind === 'HELP') {
        help = { name: name!, text: rest };
        continue;
      }
      const family = rest === 'counter' && !name!.endsWith('_total') ? `${name}_total` : name!;
      if (out.length) out.push('');
      const helpText = help && help.name === name ? help.text : undefined;
      if (helpText !== undefined) out.push(`# HELP ${family} ${helpText}`);
      out.push(`# TYPE ${family} ${rest}`);
      help = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    const end = endOfSeries(line);
    const exemplar = line.indexOf(' # ', end);
    out.push(exemplar === -1 ? line : line.slice(0, exemplar));
  }
  return `${out.join('\n')}\n`;
}

/** The registry's metrics in the format `accept` asks for, with the matching content type. */
export async function exposition(registry: Registry, accept: string | undefined): Promise<{ body: string; contentType: string }> {
  const text = await registry.metrics();
  if ((registry.contentType as string) !== OPENMETRICS_CONTENT_TYPE) return { body: text, contentType: registry.contentType };
  if (acceptsOpenMetrics(accept)) return { body: text, contentType: OPENMETRICS_CONTENT_TYPE };
  return { body: openMetricsToText(text), contentType: TEXT_CONTENT_TYPE };
}

/**
 * A registry that renders OpenMetrics (and so keeps exemplars). prom-client types the content type
 * into the Registry type; this one is typed as the default so every `registry: Registry`
 * parameter across the services accepts it — serve it through `exposition`, never raw.
 */
export function openMetricsRegistry(): Registry {
  const registry = new Registry();
  // Switched while still empty: prom-client renames counters only as it renders them.
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as unknown as Registry['contentType']);
  return registry;
}
