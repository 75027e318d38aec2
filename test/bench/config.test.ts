/**
 * The bench's flags: `--ab=<ref>` and `--trials=N` reach the http section, and their absence
 * leaves the standard run (no A/B, the section's own trial count).
 */
import { afterEach, beforeEach, expect, test } from 'vitest';
import { parseArgs } from '../../bench/lib/config.js';

let saved: string | undefined;
beforeEach(() => {
  saved = process.env.BENCH_SERVICE_NODE;
  // The bench's own Node: no fetch of the images' Node for a test of flags.
  process.env.BENCH_SERVICE_NODE = 'machine';
});
afterEach(() => {
  if (saved === undefined) delete process.env.BENCH_SERVICE_NODE;
  else process.env.BENCH_SERVICE_NODE = saved;
});

test('--ab and --trials are read; the standard run has neither', () => {
  const ab = parseArgs(['--only=http', '--ab=main~2', '--trials=7']);
  expect(ab.abRef).toBe('main~2');
  expect(ab.httpTrials).toBe(7);
  expect([...ab.only!]).toEqual(['http']);
  const plain = parseArgs(['--quick']);
  expect(plain.abRef).toBeUndefined();
  expect(plain.httpTrials).toBeUndefined();
  expect(parseArgs(['--ab=', '--trials=zero'])).toMatchObject({ abRef: undefined, httpTrials: undefined });
});
