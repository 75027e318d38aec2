/**
 * txState: one state per transaction, made on first use and shared by every later use in it; its
 * commit hook runs once, after the transaction's function returns, with the state as it ends, and
 * what it writes commits with the transaction. A transaction that throws runs no hook and leaves
 * nothing behind for the next. PGlite must behave the same.
 */
import { afterAll, expect, test } from 'vitest';
import { txState, type Db } from '@orderflow/kit';
import { dbBackends } from '@orderflow/kit/testing';

const { backends, close } = dbBackends('txstate', { poolMax: 1 });
afterAll(close);

const rows = (db: Db) => db.query<{ k: string; n: number }>('SELECT k, n FROM s ORDER BY k');

test.each(backends)("%s: a transaction's state is made once, shared within it, and written once at commit", async (_, open) => {
  const db = await open();
  await db.exec('CREATE TABLE IF NOT EXISTS s (k text PRIMARY KEY, n int NOT NULL)');
  await db.exec('DELETE FROM s');

  let made = 0;
  const commits: Array<Map<string, number>> = [];
  const totals = txState(
    () => (made++, new Map<string, number>()),
    (sql, state) => {
      commits.push(new Map(state));
      if (state.size > 0)
        sql.write('INSERT INTO s (k, n) SELECT * FROM unnest($1::text[], $2::int[])', [[...state.keys()], [...state.values()]]);
    },
  );
  const add = (t: Map<string, number>, k: string, n: number) => t.set(k, (t.get(k) ?? 0) + n);

  await db.tx(async (sql) => {
    add(totals(sql), 'a', 1);
    // A statement between two uses: the same state, and nothing written yet.
    expect(await sql.query('SELECT k FROM s')).toEqual([]);
    add(totals(sql), 'b', 2);
    add(totals(sql), 'a', 3);
    expect(commits).toEqual([]);
  });
  expect(made).toBe(1);
  // The hook saw the state as the function left it, once.
  expect(commits).toEqual([
    new Map([
      ['a', 4],
      ['b', 2],
    ]),
  ]);
  expect(await rows(db)).toEqual([
    { k: 'a', n: 4 },
    { k: 'b', n: 2 },
  ]);

  // A transaction that never asks for the state makes none and registers no hook.
  await db.tx(async (sql) => void (await sql.query('SELECT 1')));
  expect(made).toBe(1);
  expect(commits).toHaveLength(1);

  // A transaction that throws: no hook runs, nothing commits, and its state is not the next one's.
  await expect(
    db.tx(async (sql) => {
      add(totals(sql), 'rolled', 1);
      await sql.query('INSERT INTO s (k, n) VALUES ($1, $2)', ['also rolled', 1]);
      throw new Error('handler failed');
    }),
  ).rejects.toThrow('handler failed');
  expect(commits).toHaveLength(1);
  await db.tx(async (sql) => void add(totals(sql), 'c', 5));
  expect(made).toBe(3);
  expect(commits.at(-1)).toEqual(new Map([['c', 5]]));
  expect(await rows(db)).toEqual([
    { k: 'a', n: 4 },
    { k: 'b', n: 2 },
    { k: 'c', n: 5 },
  ]);

  // The hook's write failing fails the transaction: its own statements are rolled back too.
  await expect(
    db.tx(async (sql) => {
      await sql.query('INSERT INTO s (k, n) VALUES ($1, $2)', ['d', 1]);
      add(totals(sql), 'a', 1);
    }),
  ).rejects.toThrow(/duplicate key|unique/i);
  expect((await rows(db)).map((r) => r.k)).toEqual(['a', 'b', 'c']);
});

test.each(backends)('%s: two transactions at once each get their own state', async (_, open) => {
  const db = await open();
  const seen = txState((sql) => ({ sql, uses: 0 }));
  const first = db.tx(async (sql) => {
    seen(sql).uses++;
    await sql.query('SELECT 1');
    seen(sql).uses++;
    return seen(sql);
  });
  const second = db.tx(async (sql) => {
    seen(sql).uses++;
    return seen(sql);
  });
  const [a, b] = await Promise.all([first, second]);
  expect(a.uses).toBe(2);
  expect(b.uses).toBe(1);
  // Made with its own transaction's handle.
  expect(a.sql).not.toBe(b.sql);
});
