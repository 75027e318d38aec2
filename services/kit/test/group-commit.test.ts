/**
 * GroupCommit, the batching alone (order-service's group-commit.test.ts covers it on Postgres): an
 * idle writer writes at once, what arrives meanwhile is the next group, a failing group is split
 * so only the bad item fails, an error of a database that is away fails the whole group without
 * a retry, stop() drains and then refuses, a lingering idle writer waits for company only, and a
 * committed group's callers are answered after the next group's write has started.
 */
import { expect, test } from 'vitest';
import { DependencyUnavailableError, GroupCommit, type Settled } from '@orderflow/kit';

/** A writer whose groups finish when the test says so; records the groups and single writes. */
function gated(fail?: (item: number) => unknown, maxInFlight?: number, lingerMs?: number, lingerMinExpected?: number) {
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
    lingerMs,
    lingerMinExpected,
  });
  const open = async (n = 1) => {
    // Each gate is released once its group is waiting on it.
    for (let k = 0; k < n; k++) {
      while (gates.length === 0) await new Promise((r) => setImmediate(r));
      gates.shift()!();
    }
  };
  /** Releases groups as they come until all of these have settled. */
  const openUntil = async (ps: Array<Promise<unknown>>) => {
    let done = false;
    void Promise.allSettled(ps).then(() => (done = true));
    while (!done) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { gc, groups, singles, open, openUntil };
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

// The lingers below are a minute long: a test that passes only waits on company, stop() or a
// group in flight, never on the timer (it would time out first).
test('lingerMs: an idle writer waits for a second item and writes both as one group', async () => {
  const { gc, groups, open } = gated(undefined, 1, 60_000, 0);
  const a = gc.submit(1);
  await new Promise((r) => setImmediate(r));
  expect(groups).toEqual([]); // waiting for company
  const b = gc.submit(2);
  await open();
  expect(await Promise.all([a, b])).toEqual([10, 20]);
  expect(groups).toEqual([[1, 2]]);
});

test('lingerMs: company ends the wait at the end of its turn, so every item of that turn joins the group', async () => {
  const { gc, groups, open } = gated(undefined, 1, 60_000, 0);
  const a = gc.submit(1);
  await new Promise((r) => setImmediate(r));
  const rest = [gc.submit(2), gc.submit(3)]; // company
  await Promise.resolve();
  rest.push(gc.submit(4)); // a caller resuming in the same turn, as the requests of one poll phase do
  expect(groups).toEqual([]);
  await open();
  expect(await Promise.all([a, ...rest])).toEqual([10, 20, 30, 40]);
  expect(groups).toEqual([[1, 2, 3, 4]]);
});

test('lingerMs: a lone item is written once the linger has passed', async () => {
  const { gc, groups, open } = gated(undefined, 1, 20, 0);
  const a = gc.submit(1);
  expect(groups).toEqual([]);
  await open(); // released only once the group is being written, after the linger
  expect(await a).toBe(10);
  expect(groups).toEqual([[1]]);
});

test('lingerMs: items queued behind a group in flight are written as soon as it commits, with no wait', async () => {
  const { gc, groups, open } = gated(undefined, 1, 60_000, 0);
  const a = gc.submit(1);
  const b = gc.submit(2);
  await open(); // [1, 2] written together at once (company came)
  await Promise.all([a, b]);
  const c = gc.submit(3); // idle again: lingers
  const d = gc.submit(4); // company: written at the end of this turn
  await open();
  await Promise.all([c, d]);
  const inFlight = [5, 6].map((i) => gc.submit(i));
  while (groups.length < 3) await new Promise((r) => setImmediate(r));
  const queued = gc.submit(7); // behind the group in flight
  await open(2); // the second group starts right after the first, no linger
  expect(await Promise.all([...inFlight, queued])).toEqual([50, 60, 70]);
  expect(groups).toEqual([[1, 2], [3, 4], [5, 6], [7]]);
});

test('lingerMs: stop() ends the wait and writes what is queued', async () => {
  const { gc, groups, open } = gated(undefined, 1, 60_000, 0);
  const a = gc.submit(1);
  const stopping = gc.stop();
  await open();
  await stopping;
  expect(await a).toBe(10);
  expect(groups).toEqual([[1]]);
});

test('lingerMs, by the recent rate: a lone item at rest is written at once; after a burst an idle writer waits for company', async () => {
  // Default lingerMinExpected (0.5): nothing came before the first item, so it expects no company.
  const { gc, groups, open, openUntil } = gated(undefined, 1, 100);
  const a = gc.submit(1);
  expect(groups).toEqual([[1]]); // written in the same turn: no wait
  await open();
  expect(await a).toBe(10);
  // A burst of 20 in one moment reads as ~21 a second: 2 expected within 100 ms.
  const burst = Array.from({ length: 20 }, (_, i) => gc.submit(100 + i));
  await openUntil(burst); // written behind the writer of [1] or by a new one: no wait either way
  expect(groups.flat().filter((i) => i >= 100)).toHaveLength(20);
  await new Promise((r) => setImmediate(r)); // the writer has left: the next item finds it idle
  const before = groups.length;
  // Synchronous from here: the 100 ms timer cannot end the wait between these two submits.
  const b = gc.submit(2);
  expect(groups.length).toBe(before); // idle, company likely: it waits
  const c = gc.submit(3);
  await open();
  expect(await Promise.all([b, c])).toEqual([20, 30]);
  expect(groups.at(-1)).toEqual([2, 3]);
});

test('an item submitted by a caller just resuming from its own group is written (no writer is lost between groups)', async () => {
  // Resuming a few microtasks after its resolve: the old writer has found the queue empty but may
  // not yet have left; whichever tick the next item comes on, a writer must take it.
  for (const ticks of [0, 1, 2, 3, 4, 5]) {
    const { gc, groups, open } = gated();
    const second = gc.submit(1).then(async () => {
      for (let t = 0; t < ticks; t++) await Promise.resolve();
      return gc.submit(2);
    });
    await open(2);
    expect(await second).toBe(20);
    expect(groups).toEqual([[1], [2]]);
  }
});

test("the next group's write starts before the committed group's callers are answered; committed() runs after the answers, and stop() waits for it", async () => {
  const log: string[] = [];
  const gates: Array<() => void> = [];
  const gc = new GroupCommit<number, number>({
    writeGroup: async (items) => {
      log.push(`write ${items.join(',')}`);
      await new Promise<void>((r) => gates.push(r));
      return items.map((i): Settled<number> => ({ ok: true, value: i * 10 }));
    },
    writeOne: (item) => Promise.resolve(item * 10),
    committed: (items, outcomes) => log.push(`committed ${items.join(',')} → ${outcomes.map((o) => (o.ok ? o.value : 'error')).join(',')}`),
  });
  const first = gc.submit(1).then((v) => log.push(`answer ${v}`));
  const rest = [2, 3].map((i) => gc.submit(i).then((v) => log.push(`answer ${v}`)));
  gates.shift()!();
  await first;
  expect(log).toEqual(['write 1', 'write 2,3', 'answer 10']);
  gates.shift()!();
  await Promise.all(rest);
  const stopped = gc.stop().then(() => log.push('stopped'));
  await stopped;
  expect(log).toEqual([
    'write 1',
    'write 2,3',
    'answer 10',
    'committed 1 → 10',
    'answer 20',
    'answer 30',
    'committed 2,3 → 20,30',
    'stopped',
  ]);
});

test('a committed() hook that throws leaves the answers and the writer alone', async () => {
  const gc = new GroupCommit<number, number>({
    writeGroup: (items) => Promise.resolve(items.map((i): Settled<number> => ({ ok: true, value: i }))),
    writeOne: (item) => Promise.resolve(item),
    committed: () => {
      throw new Error('hook failed');
    },
  });
  expect(await gc.submit(1)).toBe(1);
  expect(await gc.submit(2)).toBe(2);
  await gc.stop();
});
