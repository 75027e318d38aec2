/**
 * The saga's state machine, state by event: every status × every saga input, then sequences —
 * out-of-order arrival (payments.completed before inventory.reserved, which the two streams allow),
 * duplicates (redelivery, replay) and anything after a final state.
 */
import { describe, expect, test } from 'vitest';
import { FINAL, transition, type OrderStatus, type SagaInput, type Transition } from '../src/saga/transitions.js';

const STATUSES: OrderStatus[] = ['pending', 'reserved', 'paid', 'confirmed', 'cancelled'];
const INPUTS = {
  reserved: { kind: 'reserved', amount: 42 },
  rejected: { kind: 'rejected', reason: 'out_of_stock' },
  paid: { kind: 'paid' },
  payment_failed: { kind: 'payment_failed', reason: 'payment_declined' },
  timeout: { kind: 'timeout' },
} satisfies Record<SagaInput['kind'], SagaInput>;
type InputName = keyof typeof INPUTS;
const NAMES = Object.keys(INPUTS) as InputName[];

const stay = (status: OrderStatus): Transition => ({ status, steps: [] });
const cancelled = (reason: string): Transition => ({
  status: 'cancelled',
  steps: [{ status: 'cancelled', reason }],
  emit: 'orders.cancelled',
  reason,
});
const confirmed: Transition = { status: 'confirmed', steps: [{ status: 'paid' }, { status: 'confirmed' }], emit: 'orders.confirmed' };

// Every cell written out: a change to any transition has to change this table on purpose.
const TABLE: Record<OrderStatus, Record<InputName, Transition>> = {
  pending: {
    reserved: { status: 'reserved', steps: [{ status: 'reserved' }], total: 42 },
    rejected: cancelled('out_of_stock'),
    // Payment is the last step, so paid and confirmed are recorded together, even before the
    // reservation's own event has arrived.
    paid: confirmed,
    payment_failed: cancelled('payment_declined'),
    timeout: cancelled('timeout'),
  },
  reserved: {
    reserved: { ...stay('reserved'), total: 42 },
    rejected: cancelled('out_of_stock'),
    paid: confirmed,
    payment_failed: cancelled('payment_declined'),
    timeout: cancelled('timeout'),
  },
  paid: {
    reserved: { ...stay('paid'), total: 42 },
    rejected: cancelled('out_of_stock'),
    paid: stay('paid'),
    payment_failed: cancelled('payment_declined'),
    // Money is taken: only the confirmation is missing, which a timeout must not overrule.
    timeout: stay('paid'),
  },
  confirmed: {
    // A late reservation still records the total, but moves nothing.
    reserved: { ...stay('confirmed'), total: 42 },
    rejected: stay('confirmed'),
    paid: stay('confirmed'),
    payment_failed: stay('confirmed'),
    timeout: stay('confirmed'),
  },
  cancelled: {
    reserved: { ...stay('cancelled'), total: 42 },
    rejected: stay('cancelled'),
    paid: stay('cancelled'),
    payment_failed: stay('cancelled'),
    timeout: stay('cancelled'),
  },
};

describe('transition(): every status × every input', () => {
  const cells = STATUSES.flatMap((s) => NAMES.map((n) => [s, n] as const));
  test.each(cells)('%s + %s', (status, name) => {
    expect(transition(status, INPUTS[name])).toEqual(TABLE[status][name]);
  });

  test('a final state is absorbing: no step, no event, no new reason for any input', () => {
    for (const status of FINAL) {
      for (const name of NAMES) {
        const t = transition(status, INPUTS[name]);
        expect(t.status, `${status} + ${name}`).toBe(status);
        expect(t.steps, `${status} + ${name}`).toEqual([]);
        expect(t.emit, `${status} + ${name}`).toBeUndefined();
        expect(t.reason, `${status} + ${name}`).toBeUndefined();
      }
    }
  });
});

interface Run {
  status: OrderStatus;
  history: Array<{ status: OrderStatus; reason?: string }>;
  emitted: string[];
  total?: number;
  reason?: string;
}

/** Applies inputs the way applySaga does: status, reason and total kept, steps appended. */
function run(names: InputName[], from: OrderStatus = 'pending'): Run {
  const r: Run = { status: from, history: [], emitted: [] };
  for (const n of names) {
    const t = transition(r.status, INPUTS[n]);
    r.status = t.status;
    r.history.push(...t.steps);
    if (t.emit) r.emitted.push(t.emit);
    r.reason = t.reason ?? r.reason;
    r.total = t.total ?? r.total;
  }
  return r;
}

/** Every sequence of the given length over the inputs (5^n). */
function sequences(n: number): InputName[][] {
  if (n === 0) return [[]];
  return sequences(n - 1).flatMap((s) => NAMES.map((x) => [...s, x]));
}

describe('sequences of saga inputs', () => {
  test('out of order: payment before reservation ends as in order — confirmed, one orders.confirmed, total recorded', () => {
    const inOrder = run(['reserved', 'paid']);
    const outOfOrder = run(['paid', 'reserved']);
    for (const r of [inOrder, outOfOrder]) {
      expect(r).toMatchObject({ status: 'confirmed', emitted: ['orders.confirmed'], total: 42 });
      expect(r.history.at(-1)).toEqual({ status: 'confirmed' });
    }
    expect(inOrder.history.map((h) => h.status)).toEqual(['reserved', 'paid', 'confirmed']);
    expect(outOfOrder.history.map((h) => h.status)).toEqual(['paid', 'confirmed']);
  });

  test('out of order: a failed payment before its reservation cancels once, with the payment reason', () => {
    for (const order of [
      ['reserved', 'payment_failed'],
      ['payment_failed', 'reserved'],
    ] as InputName[][]) {
      expect(run(order), order.join(' → ')).toMatchObject({
        status: 'cancelled',
        reason: 'payment_declined',
        emitted: ['orders.cancelled'],
        total: 42,
      });
    }
  });

  test('a timeout racing the outcome: whichever comes first wins, the other changes nothing', () => {
    expect(run(['reserved', 'timeout', 'paid'])).toMatchObject({ status: 'cancelled', reason: 'timeout', emitted: ['orders.cancelled'] });
    expect(run(['reserved', 'paid', 'timeout'])).toMatchObject({ status: 'confirmed', emitted: ['orders.confirmed'] });
    expect(run(['timeout', 'reserved'])).toMatchObject({
      status: 'cancelled',
      reason: 'timeout',
      emitted: ['orders.cancelled'],
      total: 42,
    });
  });

  test.each(NAMES)('a duplicate %s changes nothing the first one did not', (name) => {
    for (const from of STATUSES) {
      const once = run([name], from);
      const twice = run([name, name], from);
      expect(twice, `${from}: ${name} twice`).toEqual(once);
    }
  });

  // Every order of up to four inputs (780 sequences), duplicates included: the saga's promises.
  const all = [1, 2, 3, 4].flatMap(sequences);
  test('any sequence: at most one final event, and it names the final status', () => {
    for (const seq of all) {
      const r = run(seq);
      const label = seq.join(' → ');
      expect(r.emitted.length, label).toBeLessThanOrEqual(1);
      if (r.emitted.length === 1) expect(r.emitted[0], label).toBe(`orders.${r.status}`);
      else expect(FINAL.has(r.status), label).toBe(false);
    }
  });

  test('any sequence: once final, the status, reason and history stay as they were', () => {
    for (const seq of all) {
      const i = seq.findIndex((_, k) => FINAL.has(run(seq.slice(0, k + 1)).status));
      if (i < 0) continue;
      const atFinal = run(seq.slice(0, i + 1));
      const end = run(seq);
      const label = seq.join(' → ');
      expect(end.status, label).toBe(atFinal.status);
      expect(end.reason, label).toBe(atFinal.reason);
      expect(end.history, label).toEqual(atFinal.history);
    }
  });

  test('any sequence: the history ends in the current status, and a cancellation carries a reason', () => {
    for (const seq of all) {
      const r = run(seq);
      const label = seq.join(' → ');
      if (r.history.length) expect(r.history.at(-1)!.status, label).toBe(r.status);
      if (r.status === 'cancelled') expect(r.reason, label).toBeTruthy();
    }
  });

  test('any sequence containing a reservation records its total, whenever it arrived', () => {
    for (const seq of all) if (seq.includes('reserved')) expect(run(seq).total, seq.join(' → ')).toBe(42);
  });
});
