/**
 * Linger, the one decision both batchers make (a consumer's batch, a group commit): wait for
 * company only when the arrivals before this one make company likely.
 */
import { expect, test } from 'vitest';
import { Linger } from '../src/batching/linger.js';

test('a lone arrival at rest does not wait; amid a steady stream it does', () => {
  const linger = new Linger(40);
  expect(linger.arrive(0)).toBe(false);
  // 100/s: four arrivals expected within 40 ms once the estimate has settled.
  let now = 0;
  for (let i = 1; i <= 300; i++) linger.arrive((now = i * 10));
  expect(linger.arrive(now + 10)).toBe(true);
  // After a quiet minute the stream is forgotten.
  expect(linger.arrive(now + 60_000)).toBe(false);
});

test('a slow trickle stays below half an expected arrival and never waits', () => {
  const linger = new Linger(40);
  // 5/s: 0.2 arrivals expected within 40 ms.
  const waits = Array.from({ length: 50 }, (_, i) => linger.arrive(i * 200));
  expect(waits.some(Boolean)).toBe(false);
});

test('minExpected 0 always waits, ms 0 never does', () => {
  expect(new Linger(40, 0).arrive(0)).toBe(true);
  const never = new Linger(0, 0);
  expect([0, 1, 2, 3].map((t) => never.arrive(t))).toEqual([false, false, false, false]);
});
