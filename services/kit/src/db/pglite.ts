import { mkdirSync } from 'node:fs';
import type { Db, FirstStatement, Row, Sql, TxSql } from './db.js';
import { assertSchemaName } from './db.js';

export interface PgliteOptions {
  /** Directory for the data files; undefined keeps everything in memory (tests). */
  dataDir?: string;
  schema: string;
}

/**
 * Embedded Postgres (PGlite, in-process WASM) for running without a database server. It has a
 * single connection, so transactions are serialised by PGlite itself.
 */
export async function openPglite(opts: PgliteOptions): Promise<Db> {
  const schema = assertSchemaName(opts.schema);
  // Loaded lazily: services with DATABASE_URL never pay for the WASM module.
  const { PGlite, types } = await import('@electric-sql/pglite');
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const parsers = { [types.INT8]: (v: string) => Number(v), [types.NUMERIC]: (v: string) => Number(v) };
  const db = await PGlite.create(opts.dataDir, { parsers });
  await db.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}"`);
  type Q = Pick<typeof db, 'query' | 'exec'>;
  const wrap = (q: Q): Sql => ({
    query: async <R extends Row>(text: string, params?: unknown[]) => (await q.query<R>(text, params)).rows,
    exec: async (text: string) => {
      await q.exec(text);
    },
  });
  const transaction = <T>(first: FirstStatement | undefined, fn: (rows: Row[], sql: TxSql) => Promise<T>): Promise<T> =>
    db.transaction(async (tx) => {
      const finals: Array<{ text: string; params: unknown[] }> = [];
      // In process there is no round trip to save: queued writes just run before what follows them.
      const queued: Array<{ text: string; params: unknown[] }> = [];
      const hooks: Array<() => void> = [];
      const inner = wrap(tx);
      const flush = async () => {
        for (const w of queued.splice(0)) await inner.query(w.text, w.params);
      };
      const sql: TxSql = {
        query: async <R extends Row>(text: string, params?: unknown[]) => {
          await flush();
          return inner.query<R>(text, params);
        },
        exec: async (text) => {
          await flush();
          await inner.exec(text);
        },
        atCommit: (text, params) => void finals.push({ text, params }),
        write: (text, params) => void queued.push({ text, params }),
        beforeCommit: (hook) => void hooks.push(hook),
      };
      const result = await fn(first ? await sql.query(first.text, [...first.params]) : [], sql);
      for (const hook of hooks.splice(0)) hook();
      await flush();
      for (const f of finals) await inner.query(f.text, f.params);
      return result;
    });
  let closed = false;
  return {
    kind: 'pglite',
    schema,
    ...wrap(db),
    tx: <T>(fn: (sql: TxSql) => Promise<T>) => transaction(undefined, (_, sql) => fn(sql)),
    // In process: no round trip to save, the first statement is just the first statement.
    txFrom: <R extends Row, T>(first: FirstStatement, fn: (rows: R[], sql: TxSql) => Promise<T>) =>
      transaction(first, (rows, sql) => fn(rows as R[], sql)),
    async ping() {
      await db.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
    },
  };
}
