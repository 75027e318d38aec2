/**
 * Db.txFrom: the first statement goes out with BEGIN (one batch on Postgres). Hostile values must
 * arrive byte for byte, the statement must be inside the transaction (rolled back with it), and
 * PGlite must behave the same.
 */
import { afterAll, expect, test } from 'vitest';
import { dbBackends } from '@orderflow/kit/testing';

const hostile = ["it's", 'back\\slash', '"quoted", {braced}', "'); DROP TABLE t; --", '$1 and $2', 'NULL', '', 'ünïcödé ✓'];

const { backends, close } = dbBackends('txfrom');
afterAll(close);

test.each(backends)(
  '%s: txFrom inserts hostile text and arrays exactly, and its first statement rolls back with the transaction',
  async (_, open) => {
    const db = await open();
    await db.exec('CREATE TABLE IF NOT EXISTS t (k text, v text, n int)');
    await db.exec('DELETE FROM t');
    const first = {
      text: 'INSERT INTO t (k, v, n) SELECT $1, unnest($2::text[]), $3 RETURNING v',
      params: ["key'\\", hostile, 7],
    };
    const rows = await db.txFrom<{ v: string }, string[]>(first, async (r, sql) => {
      await sql.query('INSERT INTO t (k, v, n) VALUES ($1, $2, $3)', ['second', 'inside', 1]);
      return r.map((x) => x.v);
    });
    expect(rows).toEqual(hostile);
    const stored = await db.query<{ k: string; v: string; n: number }>('SELECT k, v, n FROM t WHERE k <> $1', ['second']);
    expect(stored.map((r) => r.v).sort()).toEqual([...hostile].sort());
    expect(new Set(stored.map((r) => r.k))).toEqual(new Set(["key'\\"]));
    expect(new Set(stored.map((r) => r.n))).toEqual(new Set([7]));
    expect(await db.query('SELECT v FROM t WHERE k = $1', ['second'])).toEqual([{ v: 'inside' }]);

    // A failing body rolls back the first statement too: it ran inside the transaction.
    await expect(
      db.txFrom({ text: 'INSERT INTO t (k, v, n) VALUES ($1, $2, $3)', params: ['rolled', 'back', 2] }, async () => {
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await db.query('SELECT * FROM t WHERE k = $1', ['rolled'])).toEqual([]);

    // So does a failing first statement, and the connection stays usable.
    await expect(db.txFrom({ text: 'INSERT INTO t (n) VALUES ($1)', params: ['not a number'] }, async () => 1)).rejects.toThrow();
    expect(await db.query<{ c: number }>('SELECT count(*)::int AS c FROM t')).toEqual([{ c: hostile.length + 1 }]);
  },
);
