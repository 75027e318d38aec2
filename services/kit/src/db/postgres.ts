import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import pg from 'pg';
import type { Logger } from 'pino';
import { dbSettings, type DbSettings } from '../config.js';
import type { Db, FirstStatement, Row, TxSql } from './db.js';
import { assertSchemaName } from './db.js';

// Postgres numeric and bigint arrive as strings by default; the platform keeps counts and
// sequence numbers well inside 2^53, so numbers are the honest JS type.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

export interface PostgresOptions {
  url: string;
  schema: string;
  poolMax?: number;
  applicationName?: string;
  /** Timeouts and keepalive for every connection; DB_* env defaults (config.ts) when absent. */
  settings?: Partial<DbSettings>;
  /** Where connection errors are noted (they are survived, not thrown). */
  log?: Logger;
}

/** A pooled Postgres database whose connections all work inside one schema. */
export async function openPostgres(opts: PostgresOptions): Promise<Db> {
  const schema = assertSchemaName(opts.schema);
  const limits = { ...dbSettings(), ...opts.settings };
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? limits.poolMax,
    options: `-c search_path=${schema}`,
    application_name: opts.applicationName ?? schema,
    // Also bounds the wait for a free connection of a full pool.
    connectionTimeoutMillis: limits.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    // Sent in the startup packet: no extra round trip per connection. A hung statement, a lock
    // wait behind a stuck transaction or a transaction left open (a handler awaiting something
    // that never answers) ends with an error instead of holding a connection and its locks forever.
    statement_timeout: limits.statementTimeoutMs || undefined,
    lock_timeout: limits.lockTimeoutMs || undefined,
    idle_in_transaction_session_timeout: limits.idleInTransactionTimeoutMs || undefined,
    // A server that vanished without closing the socket (host down, network cut) is noticed.
    keepAlive: true,
    keepAliveInitialDelayMillis: limits.keepAliveInitialDelayMs,
    // pg's pipeline mode: a query is written at once, not after the previous one's answer, so a
    // transaction sends BEGIN with its first statement and COMMIT with its atCommit writes (see
    // transaction()). Callers still await each statement they need an answer from; the server
    // runs them in order, each with its own Sync.
    ...({ pipeline: true } as object),
  });
  // Every client gets its own error listener the moment the pool has it, for its whole life. The
  // pool's idle listener covers only idle clients and tx() listens only inside its callback; in
  // between, a terminated backend's error (57P01) arriving in the same socket read as the
  // previous query's result, after the pool handed the client to the next waiter but before that
  // waiter resumed, had no listener: `Unhandled 'error' event` ended the process. The failure
  // still reaches whoever uses the client next (the client is not queryable and is discarded).
  pool.on('connect', (client) => {
    client.on('error', (err: Error & { code?: string }) =>
      opts.log?.warn({ code: err.code, err: err.message, schema }, 'db.connection_error'),
    );
  });
  // Pool-level report of the same errors on idle clients (already logged above).
  pool.on('error', () => undefined);
  // Parameterised statements are named, so each connection parses and plans one text once and
  // then only binds and executes it: the hot paths run the same few dozen texts over and over.
  // Bounded, in case someone builds texts with values inlined (those run unnamed).
  const names = new Map<string, string>();
  const nameOf = (text: string): string | undefined => {
    let n = names.get(text);
    if (n === undefined && names.size < 1000) {
      n = `of_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      names.set(text, n);
    }
    return n;
  };
  const run = async <R extends Row>(c: pg.Pool | pg.PoolClient, text: string, params?: unknown[]) =>
    (await (params?.length ? c.query<R>({ name: nameOf(text), text, values: params }) : c.query<R>(text))).rows;
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`).catch((err: { code?: string }) => {
    // Two replicas creating the schema at once race on the catalog; the loser's schema exists.
    if (err.code !== '23505') throw err;
  });
  /**
   * Runs fn in a transaction on one pooled client, in as few round trips and socket writes as
   * pg's pipeline mode allows: BEGIN is written together with the first statement (one write,
   * one round trip), and the atCommit writes together with COMMIT. A transaction that ran no
   * statement sends nothing at all.
   *
   * A statement failing in a pipeline makes the server answer the COMMIT behind it with ROLLBACK
   * (not an error); so does a body that swallowed a failed statement. Either way the transaction
   * rejects, never passes for committed.
   */
  const transaction = async <T>(first: FirstStatement | undefined, fn: (rows: Row[], sql: TxSql) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    // A backend terminated while the client is checked out but between queries (e.g. the
    // outbox relay awaiting NATS inside its transaction) is emitted as 'error' on the client;
    // with no listener that kills the process (seen: pg_terminate_backend crashed all three
    // services). Note it instead: the next query fails, and the broken client is discarded.
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    let started = false;
    // The queries issued inside go out in one write: pg corks per query, this corks across them.
    const stream = (client as unknown as { connection?: { stream?: Partial<Pick<Writable, 'cork' | 'uncork'>> } }).connection?.stream;
    const corked = <X>(issue: () => X): X => {
      stream?.cork?.();
      try {
        return issue();
      } finally {
        stream?.uncork?.();
      }
    };
    const beginIfNot = (): Promise<unknown> | undefined => (started ? undefined : ((started = true), client.query('BEGIN')));
    const send = <R extends Row>(text: string, params?: unknown[]): Promise<R[]> =>
      corked(() => {
        const begin = beginIfNot();
        const rows = run<R>(client, text, params);
        return begin ? Promise.all([begin, rows]).then(([, r]) => r) : rows;
      });
    const finals: Array<{ text: string; params: unknown[] }> = [];
    try {
      const sql: TxSql = {
        query: send,
        exec: async (text) => {
          await send(text);
        },
        atCommit: (text, params) => void finals.push({ text, params }),
      };
      const result = await fn(first ? await send(first.text, [...first.params]) : [], sql);
      if (!started && finals.length === 0) return result;
      const [commit] = await corked(() => {
        const before = [beginIfNot(), ...finals.map((f) => run(client, f.text, f.params))];
        return Promise.all([client.query('COMMIT'), ...before]);
      });
      if (commit.command !== 'COMMIT') throw new Error(`transaction not committed: the server answered COMMIT with ${commit.command}`);
      return result;
    } catch (err) {
      // A failed ROLLBACK means the connection is gone: don't return it to the pool.
      if (started) await client.query('ROLLBACK').catch((e: Error) => (broken ??= e));
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  };
  let closed = false;
  return {
    kind: 'postgres',
    schema,
    query: (text, params) => run(pool, text, params),
    exec: async (text) => {
      await pool.query(text);
    },
    tx: <T>(fn: (sql: TxSql) => Promise<T>) => transaction(undefined, (_, sql) => fn(sql)),
    txFrom: <R extends Row, T>(first: FirstStatement, fn: (rows: R[], sql: TxSql) => Promise<T>) =>
      transaction(first, (rows, sql) => fn(rows as R[], sql)),
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
