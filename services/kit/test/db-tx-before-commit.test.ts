/**
 * sql.beforeCommit: hooks run once the transaction's function has returned, in the order
 * registered, and what they queue commits with the transaction (after the function's own queued
 * writes and before its atCommit writes, as queued). A function that throws runs no hook and
 * commits nothing; a hook's write that fails fails the transaction. PGlite must behave the same.
 */
import { afterAll, expect, test } from 'vitest';
import { type Db } from '@orderflow/kit';
import { dbBackends } from '@orderflow/kit/testing';

const { backends, close } = dbBackends('txbefore', { poolMax: 1 });
afterAll(close);

const rows = (db: Db) => db.query<{ k: string; n: number }>('SELECT k, n FROM h ORDER BY k');

test.each(backends)('%s: beforeCommit hooks write what the transaction kept in memory, once, at commit', async (_, open) => {
  const db = await open();
  await db.exec('CREATE TABLE IF NOT EXISTS h (k text PRIMARY KEY, n int NOT NULL)');
  await db.exec('DELETE FROM h');

  const order: string[] = [];
  await db.tx(async (sql) => {
    // A total kept in memory while the function runs; the hook reads it at commit, not now.
    const totals = new Map<string, number>();
    sql.beforeCommit(() => {
      order.push('first hook');
      sql.write('INSERT INTO h (k, n) SELECT * FROM unnest($1::text[], $2::int[])', [[...totals.keys()], [...totals.values()]]);
    });
    sql.beforeCommit(() => {
      order.push('second hook');
      // Runs after the first hook's write: it sees that row.
      sql.write('UPDATE h SET n = n * 10 WHERE k = $1', ['a']);
    });
    sql.atCommit('INSERT INTO h (k, n) SELECT $1, count(*) FROM h', ['count']);
    for (const [k, n] of [
      ['a', 1],
      ['b', 2],
      ['a', 3],
    ] as const)
      totals.set(k, (totals.get(k) ?? 0) + n);
    order.push('function returned');
  });
  expect(order).toEqual(['function returned', 'first hook', 'second hook']);
  // The atCommit insert ran last: it counted the hooks' rows.
  expect(await rows(db)).toEqual([
    { k: 'a', n: 40 },
    { k: 'b', n: 2 },
    { k: 'count', n: 2 },
  ]);

  // A function that throws: no hook runs, nothing commits.
  let ran = false;
  await expect(
    db.tx(async (sql) => {
      sql.beforeCommit(() => {
        ran = true;
        sql.write('INSERT INTO h (k, n) VALUES ($1, $2)', ['never', 1]);
      });
      await sql.query('INSERT INTO h (k, n) VALUES ($1, $2)', ['rolled', 1]);
      throw new Error('handler failed');
    }),
  ).rejects.toThrow('handler failed');
  expect(ran).toBe(false);

  // A hook's write that fails fails the transaction: the function's own statement is rolled back.
  await expect(
    db.tx(async (sql) => {
      await sql.query('INSERT INTO h (k, n) VALUES ($1, $2)', ['c', 1]);
      sql.beforeCommit(() => sql.write('INSERT INTO h (k, n) VALUES ($1, $2)', ['b', 9]));
    }),
  ).rejects.toThrow(/duplicate key|unique/i);
  expect(await rows(db)).toEqual([
    { k: 'a', n: 40 },
    { k: 'b', n: 2 },
    { k: 'count', n: 2 },
  ]);

  // The connection is clean afterwards.
  await db.tx(async (sql) => sql.beforeCommit(() => sql.write('INSERT INTO h (k, n) VALUES ($1, $2)', ['d', 4])));
  expect((await rows(db)).map((r) => r.k)).toEqual(['a', 'b', 'count', 'd']);
});
