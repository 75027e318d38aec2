/**
 * Db.tx's queued writes (sql.write): on Postgres each goes out in one batch with the statement
 * after it or with COMMIT. However they travel, a transaction must read as if each write ran
 * where it was queued: later statements see it, a failed write fails the next statement (or the
 * commit) and nothing commits, and the connection is clean afterwards. PGlite must behave the same.
 */
import { afterAll, expect, test } from 'vitest';
import { type Db } from '@orderflow/kit';
import { dbBackends } from '@orderflow/kit/testing';

// One Postgres connection: a broken or left-open session would show in the very next transaction.
const { backends, close } = dbBackends('txwrite', { poolMax: 1 });
afterAll(close);

const rows = (db: Db) => db.query<{ k: string; n: number }>('SELECT k, n FROM w ORDER BY k');

test.each(backends)('%s: queued writes run in order, are seen by what follows, and commit or fail with it', async (_, open) => {
  const db = await open();
  await db.exec('CREATE TABLE IF NOT EXISTS w (k text PRIMARY KEY, n int NOT NULL)');
  await db.exec('DELETE FROM w');

  // Two writes, then a read: the read sees both, in the order they were queued.
  const seen = await db.tx(async (sql) => {
    sql.write('INSERT INTO w (k, n) VALUES ($1, $2)', ['a', 1]);
    sql.write('UPDATE w SET n = n * $2 WHERE k = $1', ['a', 10]);
    const [r] = await sql.query<{ n: number }>('SELECT n FROM w WHERE k = $1', ['a']);
    // Queued after the read: still in the transaction, going out with COMMIT.
    sql.write('INSERT INTO w (k, n) VALUES ($1, $2)', ['b', r!.n + 1]);
    return r!.n;
  });
  expect(seen).toBe(10);
  expect(await rows(db)).toEqual([
    { k: 'a', n: 10 },
    { k: 'b', n: 11 },
  ]);

  // Only writes: BEGIN, the writes and COMMIT are one transaction.
  await db.tx(async (sql) => {
    sql.write('INSERT INTO w (k, n) VALUES ($1, $2)', ['c', 3]);
    sql.write('UPDATE w SET n = n + 1 WHERE k = $1', ['c']);
  });
  expect((await rows(db)).find((r) => r.k === 'c')).toEqual({ k: 'c', n: 4 });

  // A write that fails (duplicate key) fails the statement after it, and nothing commits.
  await expect(
    db.tx(async (sql) => {
      await sql.query('INSERT INTO w (k, n) VALUES ($1, $2)', ['d-rolled-back', 0]);
      sql.write('INSERT INTO w (k, n) VALUES ($1, $2)', ['a', 0]);
      await sql.query('SELECT 1 AS one WHERE $1::int = 1', [1]);
    }),
  ).rejects.toMatchObject({ code: '23505' });
  // ... or fails the commit when nothing follows it, with the atCommit writes.
  await expect(
    db.txFrom({ text: 'INSERT INTO w (k, n) VALUES ($1, $2)', params: ['e-rolled-back', 0] }, async (_rows, sql) => {
      sql.write('INSERT INTO w (k, n) VALUES ($1, $2)', ['b', 0]);
      sql.atCommit('INSERT INTO w (k, n) VALUES ($1, $2)', ['f-rolled-back', 0]);
    }),
  ).rejects.toMatchObject({ code: '23505' });
  expect((await rows(db)).map((r) => r.k)).toEqual(['a', 'b', 'c']);

  // A write queued before a statement without parameters (which may be several statements) runs first.
  await db.tx(async (sql) => {
    sql.write('UPDATE w SET n = $2 WHERE k = $1', ['c', 40]);
    await sql.exec("UPDATE w SET n = n + 2 WHERE k = 'c'; UPDATE w SET n = n + 1 WHERE k = 'c'");
  });
  expect((await rows(db)).find((r) => r.k === 'c')).toEqual({ k: 'c', n: 43 });

  // A body that throws after queuing writes rolls them back.
  await expect(
    db.tx(async (sql) => {
      sql.write('DELETE FROM w WHERE k = $1', ['a']);
      await sql.query('SELECT count(*)::int AS c FROM w WHERE k <> $1', ['a']);
      throw new Error('changed my mind');
    }),
  ).rejects.toThrow('changed my mind');

  // The same write queued twice, its text new to the connection: one batch prepares it once and runs it twice.
  const twice = 'UPDATE w SET n = n + $2 WHERE k = $1 AND n >= 0';
  await db.tx(async (sql) => {
    sql.write(twice, ['a', 1]);
    sql.write(twice, ['a', 1]);
  });
  expect((await rows(db)).find((r) => r.k === 'a')).toEqual({ k: 'a', n: 12 });

  // The connection is clean afterwards: a plain transaction commits.
  await db.tx(async (sql) => {
    sql.write('INSERT INTO w (k, n) VALUES ($1, $2)', ['g-after', 7]);
  });
  expect((await rows(db)).map((r) => r.k)).toEqual(['a', 'b', 'c', 'g-after']);
});
