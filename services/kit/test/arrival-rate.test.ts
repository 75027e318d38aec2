/**
 * ArrivalRate, the estimate the lingers consult: it settles on a steady rate, fades after a quiet
 * spell without any timer, and so tells a lone arrival at rest from one amid middling load.
 */
import { expect, test } from 'vitest';
import { ArrivalRate } from '../src/batching/arrival-rate.js';

test('nothing has arrived: nothing is expected', () => {
  expect(new ArrivalRate().perSecond(123)).toBe(0);
  expect(new ArrivalRate().expectedWithin(1_000, 0)).toBe(0);
});

test('a steady rate is read back within a few percent, whatever the rate', () => {
  for (const perSec of [20, 100, 1_000]) {
    const r = new ArrivalRate(1_000);
    const gap = 1_000 / perSec;
    let last = 0;
    for (let i = 0; i < 5 * perSec; i++) r.note((last = i * gap));
    // Just after an arrival the estimate is highest, just before the next lowest.
    expect(r.perSecond(last)).toBeGreaterThan(perSec * 0.97);
    expect(r.perSecond(last + gap * 0.99)).toBeLessThan(perSec * 1.03);
  }
});

test('a burst reads as load at once; a quiet spell fades it without further arrivals', () => {
  const r = new ArrivalRate(1_000);
  for (let i = 0; i < 50; i++) r.note(10_000);
  expect(r.perSecond(10_000)).toBeCloseTo(50, 5);
  expect(r.expectedWithin(25, 10_000)).toBeCloseTo(1.25, 5);
  // Five time constants later: under 1 % of it.
  expect(r.perSecond(15_000)).toBeLessThan(0.5);
  expect(r.perSecond(15_000)).toBeGreaterThan(0);
});

test('a lone arrival after a quiet spell expects no company within a short linger', () => {
  const r = new ArrivalRate(1_000);
  r.note(0);
  r.note(60_000);
  // About one arrival a second: 0.025 expected within 25 ms, far below any sensible threshold.
  expect(r.expectedWithin(25, 60_000)).toBeLessThan(0.03);
});

test('an arrival stamped earlier than the last one (two clocks read out of order) does not inflate the rate', () => {
  const r = new ArrivalRate(1_000);
  r.note(1_000);
  r.note(999);
  expect(r.perSecond(1_000)).toBeCloseTo(2, 5);
});

test('a time constant that is not positive is refused', () => {
  expect(() => new ArrivalRate(0)).toThrow(RangeError);
});
