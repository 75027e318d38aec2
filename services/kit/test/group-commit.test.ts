/**
 * GroupCommit, the batching alone (order-service's group-commit.test.ts covers it on Postgres): an
 * idle writer writes at once, what arrives meanwhile is the next group, a failing group is split
 * so only the bad item fails, an error of a database that is away fails the whole group without
 * a retry, stop() drains and then refuses.
 */
import { expect, test } from 'vitest';
import { DependencyUnavailableError, GroupCommit, type Settled } from '@orderflow/kit';

/** A writer whose groups finish when the test says so; records the groups and single writes. */
function gated(fail?: (item: number) => unknown, maxInFlight?: number) {
  const groups: number[][] = [];
  const singles: number[] = [];
  const gates: Array<() => void> = [];
  const next = () => new Promise<void>((r) => gates.push(r));
  const gc = new GroupCommit<number, number>({
    writeGroup: async (items) => {
      groups.push([...items]);
      await next();
      const bad = items.map((i) => fail?.(i)).find((e) => e !== undefined);
      if (bad !== undefined) throw bad;
      return items.map((i): Settled<number> => ({ ok: true, value: i * 10 }));
    },
    writeOne: async (item) => {
      singles.push(item);
      const e = fail?.(item);
      if (e !== undefined) throw e;
      return item * 10;
    },
    maxInFlight,
  });
  const open = async (n = 1) => {
    // Each gate is released once its group is waiting on it.
    for (let k = 0; k < n; k++) {
      while (gates.length === 0) await new Promise((r) => setImmediate(r));
      gates.shift()!();
    }
  };
  return { gc, groups, singles, open };
}

test('an idle writer writes at once; items arriving meanwhile are the next group, in order', async () => {
  const { gc, groups, open } = gated();
  const first = gc.submit(1);
  expect(groups).toEqual([[1]]); // no timer: the write started synchronously
  const rest = [2, 3, 4].map((i) => gc.submit(i));
  expect(gc.queued).toBe(3);
  await open();
  expect(await first).toBe(10);
  await open();
  expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  expect(groups).toEqual([[1], [2, 3, 4]]);
  expect(gc.queued).toBe(0);
});

test('maxInFlight 2: a second group is written while the first waits; the rest wait for either', async () => {
  const { gc, groups, open } = gated(undefined, 2);
  const a = gc.submit(1);
  const b = gc.submit(2);
  expect(groups).toEqual([[1], [2]]);
  const rest = [3, 4, 5].map((i) => gc.submit(i));
  expect(gc.queued).toBe(3);
  await open(3);
  expect(await Promise.all([a, b, ...rest])).toEqual([10, 20, 30, 40, 50]);
  expect(groups).toEqual([[1], [2], [3, 4, 5]]);
});

test('a group failing for one bad item is written item by item: only that caller gets the error', async () => {
  const bad = new Error('check constraint violated');
  const { gc, groups, singles, open } = gated((i) => (i === 3 ? bad : undefined));
  const first = gc.submit(1);
  const rest = Promise.allSettled([2, 3, 4].map((i) => gc.submit(i)));
  await open(2);
  expect(await first).toBe(10);
  const settled = await rest;
  expect(settled).toEqual([
    { status: 'fulfilled', value: 20 },
    { status: 'rejected', reason: bad },
    { status: 'fulfilled', value: 40 },
  ]);
  expect(groups).toEqual([[1], [2, 3, 4]]);
  expect(singles).toEqual([2, 3, 4]);
});

test('a database that is away fails every item of the group at once, with no retry item by item', async () => {
  const away = new DependencyUnavailableError('database', 'connection refused');
  const { gc, singles, open } = gated(() => away);
  const all = Promise.allSettled([1, 2, 3].map((i) => gc.submit(i)));
  await open(2);
  const settled = await all;
  expect(settled.map((s) => (s.status === 'rejected' ? s.reason : s.value))).toEqual([away, away, away]);
  expect(singles).toEqual([]);
});

test('stop() waits for the items already submitted, then refuses new ones', async () => {
  const { gc, open } = gated();
  const a = gc.submit(1);
  const b = gc.submit(2);
  let stopped = false;
  const stopping = gc.stop().then(() => (stopped = true));
  await expect(gc.submit(3)).rejects.toThrow(/stopped/);
  await open(2);
  await stopping;
  expect(stopped).toBe(true);
  expect(await Promise.all([a, b])).toEqual([10, 20]);
});
