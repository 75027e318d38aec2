/**
 * Db.tx's atCommit writes: on Postgres they go out with COMMIT in one batch (one Sync). Whatever
 * the wire does, the transaction must stay all or nothing: a failing atCommit write commits
 * nothing, a statement that failed inside the body (its error caught there) must not let the
 * transaction pass as committed, and the connection must be usable afterwards. PGlite must behave
 * the same.
 */
import { afterAll, expect, test } from 'vitest';
import { type Db } from '@orderflow/kit';
import { dbBackends } from '@orderflow/kit/testing';

// One Postgres connection: a broken or left-open session would show in the very next transaction.
const { backends, close } = dbBackends('txcommit', { poolMax: 1 });
afterAll(close);

const keys = async (db: Db) => (await db.query<{ k: string }>('SELECT k FROM t ORDER BY k')).map((r) => r.k);

test.each(backends)('%s: atCommit writes commit with the transaction, after its statements, or nothing commits', async (_, open) => {
  const db = await open();
  await db.exec('CREATE TABLE IF NOT EXISTS t (k text PRIMARY KEY, seen int)');
  await db.exec('DELETE FROM t');

  // Queued writes run after the body's statements, in the order queued, and commit with them.
  const answer = await db.tx(async (sql) => {
    sql.atCommit('INSERT INTO t (k, seen) SELECT $1, count(*) FROM t', ['b-last']);
    await sql.query('INSERT INTO t (k) VALUES ($1)', ['a-body']);
    sql.atCommit('UPDATE t SET seen = $2 WHERE k = $1', ['a-body', 7]);
    return 'done';
  });
  expect(answer).toBe('done');
  expect(await db.query('SELECT k, seen FROM t ORDER BY k')).toEqual([
    { k: 'a-body', seen: 7 },
    { k: 'b-last', seen: 1 },
  ]);

  // A failing atCommit write (duplicate key) rejects the transaction and takes the body with it.
  await expect(
    db.tx(async (sql) => {
      await sql.query('INSERT INTO t (k) VALUES ($1)', ['c-rolled-back']);
      sql.atCommit('INSERT INTO t (k) VALUES ($1)', ['a-body']);
    }),
  ).rejects.toMatchObject({ code: '23505' });
  expect(await keys(db)).toEqual(['a-body', 'b-last']);

  // txFrom: the first statement, the body and the atCommit write are one transaction too.
  await expect(
    db.txFrom({ text: 'INSERT INTO t (k) VALUES ($1) RETURNING k', params: ['d-first'] }, async (rows, sql) => {
      expect(rows).toEqual([{ k: 'd-first' }]);
      sql.atCommit('INSERT INTO t (k) VALUES ($1)', ['b-last']);
    }),
  ).rejects.toMatchObject({ code: '23505' });
  expect(await keys(db)).toEqual(['a-body', 'b-last']);

  // A body that swallows a failed statement cannot commit: the server has aborted the
  // transaction, so it answers COMMIT with ROLLBACK, and that must not pass for a commit.
  await expect(
    db.tx(async (sql) => {
      await sql.query('INSERT INTO t (k) VALUES ($1)', ['e-before']);
      await sql.query('INSERT INTO t (k) VALUES ($1)', ['a-body']).catch(() => undefined);
      return 'claims success';
    }),
  ).rejects.toThrow();
  expect(await keys(db)).toEqual(['a-body', 'b-last']);

  // A batch that fails after preparing a statement (first use of this text): which of its parses
  // went through is unknown, so the connection is not reused on a guess; the text runs again
  // afterwards, as an atCommit write and as a first statement.
  const fresh = 'INSERT INTO t (k, seen) VALUES ($1, $2)';
  await expect(db.tx(async (sql) => sql.atCommit(fresh, ['a-body', 1]))).rejects.toMatchObject({ code: '23505' });
  await db.tx(async (sql) => sql.atCommit(fresh, ['g-fresh', 2]));
  await db.txFrom({ text: fresh, params: ['h-fresh', 3] }, async () => undefined);
  await db.exec("DELETE FROM t WHERE k IN ('g-fresh', 'h-fresh')");

  // The connection is clean afterwards: a plain transaction commits.
  await db.tx(async (sql) => {
    await sql.query('INSERT INTO t (k) VALUES ($1)', ['f-after']);
  });
  expect(await keys(db)).toEqual(['a-body', 'b-last', 'f-after']);
});
