import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from 'vitest';
import pg from 'pg';
import { openPostgres, type Db } from '@orderflow/kit';
import { dropSchema, TEST_DATABASE_URL, waitFor } from '@orderflow/kit/testing';
import { randomBytes } from 'node:crypto';

// Errors that would have ended a service process: an 'error' event nobody listened to.
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
const schema = `dbfault_${randomBytes(4).toString('hex')}`;
let admin: pg.Client;
let db: Db | undefined;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: TEST_DATABASE_URL, application_name: 'dbfault-admin' });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await dropSchema(schema);
});
beforeEach(() => {
  uncaught.length = 0;
  process.on('uncaughtException', onUncaught);
});
afterEach(async () => {
  process.off('uncaughtException', onUncaught);
  await db?.close();
  db = undefined;
});

async function terminate(appName: string): Promise<number> {
  const r = await admin.query<{ n: number }>(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [appName],
  );
  return r.rows[0]!.n;
}

test('backends terminated while idle in the pool, checked out, or passing between waiters do not crash the process', async () => {
  const appName = `${schema}_storm`;
  db = await openPostgres({ url: TEST_DATABASE_URL, schema, applicationName: appName, poolMax: 4 });
  const d = db;
  await d.query('SELECT 1');

  // Idle in the pool.
  expect(await terminate(appName)).toBeGreaterThan(0);
  await waitFor('a query after idle clients were terminated', async () => (await d.query<{ x: number }>('SELECT 1 AS x'))[0]?.x === 1);

  // Checked out: more workers than connections, so a released client goes straight to a waiting
  // transaction — a termination arriving in the same read as the last result used to find no
  // listener on the client in that hand-over.
  let stop = false;
  let ok = 0;
  let failed = 0;
  const worker = async (i: number) => {
    while (!stop) {
      try {
        if (i % 2) await d.query('SELECT pg_sleep(0.005), $1::int', [i]);
        else
          await d.tx(async (sql) => {
            await sql.query('SELECT 1');
            await new Promise((r) => setImmediate(r));
            await sql.query('SELECT $1::int', [i]);
          });
        ok++;
      } catch {
        failed++;
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, i) => worker(i));
  let rounds = 0;
  let killed = 0;
  // The storm goes on until 100 backends have been terminated under load (however fast this
  // machine reconnects; bounded), rather than for a number of rounds that may find none.
  try {
    while (killed < 100 && rounds < 20_000 && uncaught.length === 0) {
      killed += await terminate(appName);
      rounds++;
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  expect(uncaught).toEqual([]);
  expect(killed).toBeGreaterThanOrEqual(100);
  expect(failed).toBeGreaterThan(0);
  // The pool recovers: new connections replace the terminated ones.
  await waitFor('queries succeed again', async () => (await d.query<{ x: number }>('SELECT 1 AS x'))[0]?.x === 1);
  expect(ok).toBeGreaterThan(0);
});

test('every connection carries statement, lock and idle-in-transaction timeouts from DB_* settings', async () => {
  const appName = `${schema}_limits`;
  db = await openPostgres({
    url: TEST_DATABASE_URL,
    schema,
    applicationName: appName,
    settings: { statementTimeoutMs: 1500, lockTimeoutMs: 300, idleInTransactionTimeoutMs: 400, keepAliveInitialDelayMs: 5000 },
  });
  const d = db;
  const [s] = await d.query<{ st: string; lt: string; it: string }>(
    `SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,
      current_setting('idle_in_transaction_session_timeout') AS it`,
  );
  expect(s).toEqual({ st: '1500ms', lt: '300ms', it: '400ms' });

  // A lock wait behind a stuck transaction ends with lock_timeout instead of waiting forever.
  await d.exec(`CREATE TABLE IF NOT EXISTS locked (id int PRIMARY KEY); INSERT INTO locked VALUES (1) ON CONFLICT DO NOTHING`);
  await admin.query('BEGIN');
  try {
    await admin.query(`SELECT * FROM "${schema}".locked WHERE id = 1 FOR UPDATE`);
    await expect(d.query('UPDATE locked SET id = 1 WHERE id = 1')).rejects.toMatchObject({ code: '55P03' });
  } finally {
    await admin.query('ROLLBACK');
  }

  // A statement that hangs ends with statement_timeout.
  await expect(d.query('SELECT pg_sleep(30)')).rejects.toMatchObject({ code: '57014' });

  // A transaction left open (its owner awaiting something that never answers) is ended by the
  // server; the error lands on a checked-out client between queries and is survived.
  await expect(
    d.tx(async (sql) => {
      const [{ pid }] = (await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')) as [{ pid: number }];
      await waitFor(
        'the server ended the idle transaction',
        async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
        10_000,
      );
      await sql.query('SELECT 1');
    }),
  ).rejects.toThrow();
  expect(uncaught).toEqual([]);
  expect((await d.query<{ x: number }>('SELECT 1 AS x'))[0]?.x).toBe(1);
});
