import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { dbSettings, type DbSettings } from '../config.js';
import type { Db, FirstStatement, Row, TxSql } from './db.js';
import { assertSchemaName } from './db.js';
import { runBatch, type BatchStatement } from './statement-batch.js';

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
    // Custom plans first, so PGOPTIONS can say otherwise; search_path last: the schema is this
    // pool's to decide, whatever PGOPTIONS says. Why custom plans: a pooled connection lives for
    // hours and its named statements are planned generically after five runs, against the table
    // as it was then. A service that starts on an empty database caches "scan the whole table"
    // for its lookups and locks by primary key, and keeps it while the table grows (until an
    // autoanalyze of that table happens to invalidate it): measured, 5 ms of backend CPU per
    // transaction against 0.5 once `orders` held 20,000 rows. A custom plan sees the batch's
    // own ids and today's table; planning these short statements costs less than one such scan.
    options: ['-c plan_cache_mode=force_custom_plan', limits.serverOptions, `-c search_path=${schema}`].filter(Boolean).join(' '),
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
  // Parameterised statements are named, so each connection parses one text once and then only
  // binds, plans and executes it: the hot paths run the same few dozen texts over and over.
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
   * Runs fn in a transaction on one pooled client, in as few round trips and socket writes as the
   * protocol allows: BEGIN goes out with the first statement, queued writes (sql.write) with the
   * statement after them, and the writes still queued and the atCommit writes with COMMIT, each
   * one batch (one write each way, statement-batch.ts). A transaction that ran no statement
   * sends nothing at all.
   *
   * A body that swallowed a failed statement leaves the transaction aborted; the server then
   * answers COMMIT with ROLLBACK (not an error), and the transaction rejects rather than pass for
   * committed. A failed batch discards the connection: it may have prepared a statement halfway.
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
    const batch = (statements: BatchStatement[]) =>
      runBatch(client, statements).catch((err: Error) => {
        broken ??= err;
        throw err;
      });
    const statement = (text: string, params?: readonly unknown[]): BatchStatement => ({
      text,
      params,
      name: params?.length ? nameOf(text) : undefined,
    });
    /** Writes queued by sql.write(): they go out in front of the next statement or the COMMIT. */
    const queued: BatchStatement[] = [];
    // BEGIN goes out in front of whatever the transaction sends first.
    const opening = (): BatchStatement[] => (started ? [] : [{ text: 'BEGIN' }]);
    const send = async <R extends Row>(text: string, params?: unknown[]): Promise<R[]> => {
      if (!params?.length) {
        // Text without parameters may hold several statements (migrations), which only the simple
        // protocol takes: queued writes go first in a batch of their own.
        if (queued.length) {
          const writes = [...opening(), ...queued.splice(0)];
          started = true;
          await batch(writes);
        }
        if (started) return run<R>(client, text);
        started = true;
        // BEGIN in front, in one query; its last result is the answer.
        const out = (await client.query<R>(`BEGIN;\n${text}`)) as unknown as pg.QueryResult<R> | Array<pg.QueryResult<R>>;
        return (Array.isArray(out) ? out[out.length - 1]! : out).rows;
      }
      if (started && queued.length === 0) return run<R>(client, text, params);
      const statements = [...opening(), ...queued.splice(0), statement(text, params)];
      started = true;
      const answers = await batch(statements);
      return (answers[answers.length - 1]?.rows ?? []) as R[];
    };
    const finals: BatchStatement[] = [];
    const hooks: Array<() => void> = [];
    try {
      const sql: TxSql = {
        query: send,
        exec: async (text) => {
          await send(text);
        },
        atCommit: (text, params) => void finals.push(statement(text, params)),
        write: (text, params) => void queued.push(statement(text, params)),
        beforeCommit: (hook) => void hooks.push(hook),
      };
      const result = await fn(first ? await send(first.text, [...first.params]) : [], sql);
      for (const hook of hooks.splice(0)) hook();
      if (!started && queued.length === 0 && finals.length === 0) return result;
      const statements = [...opening(), ...queued.splice(0), ...finals, { text: 'COMMIT' }];
      started = true;
      const answers = await batch(statements);
      const commit = answers[answers.length - 1]?.command;
      if (commit !== 'COMMIT') throw new Error(`transaction not committed: the server answered COMMIT with ${commit}`);
      return result;
    } catch (err) {
      // A failed ROLLBACK means the connection is gone: don't return it to the pool.
      if (started && !broken) await client.query('ROLLBACK').catch((e: Error) => (broken ??= e));
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
