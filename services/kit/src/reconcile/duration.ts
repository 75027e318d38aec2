/**
 * Go duration text ↔ nanoseconds, for the spec's durations. NACK's resources (and the nats CLI)
 * write Go durations ("1h30m", "1.5s", "250ms", "0"), and JetStream counts in nanoseconds, so
 * the spec is parsed with Go's grammar rather than the services' simpler `parseDuration`.
 */

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** The same grammar as a regular expression (the CRDs' `pattern`). No sign: no spec duration is negative. */
export const GO_DURATION_PATTERN = '^(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$';

/** "1h30m" → 5.4e12. Throws with the offending text on anything Go's time.ParseDuration would refuse (and on a sign). */
export function durationNanos(text: string): number {
  const d = String(text).trim();
  if (d === '0') return 0;
  let total = 0;
  let at = 0;
  PART.lastIndex = 0;
  while (at < d.length) {
    PART.lastIndex = at;
    const m = PART.exec(d);
    if (!m) break;
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    at = PART.lastIndex;
  }
  if (d.length === 0 || at !== d.length) {
    throw new Error(`invalid duration "${text}": expected a Go duration such as 30s, 5m, 1h30m or 250ms`);
  }
  return Math.round(total);
}

/** Nanoseconds → the shortest Go-style text ("1h30m", "250ms", "0s"): for reasons and status. */
export function formatNanos(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1e6 || ns % 1e6 !== 0) return ns % 1e3 === 0 ? `${ns / 1e3}us` : `${ns}ns`;
  if (ns < 1e9 || ns % 1e9 !== 0) return ns % 1e9 === 0 ? `${ns / 1e9}s` : `${ns / 1e6}ms`;
  let s = ns / 1e9;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
