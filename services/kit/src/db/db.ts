/** The one database interface services see, over real Postgres or embedded PGlite. */
export type Row = Record<string, unknown>;

export interface Sql {
  query<R extends Row = Row>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

/** The statements of one transaction (Db.tx, Db.txFrom). */
export interface TxSql extends Sql {
  /**
   * Queues a write to run last, after the transaction's function has returned, just before COMMIT.
   * On Postgres it goes out with the COMMIT (one batch: one round trip for both); its rows are not
   * read. If it fails, nothing commits and the transaction rejects with its error. Several run in
   * the order queued. One statement each (the extended protocol takes no multi-statement text).
   */
  atCommit(text: string, params: unknown[]): void;
}

export interface Db extends Sql {
  readonly kind: 'postgres' | 'pglite';
  readonly schema: string;
  /**
   * Runs fn in one transaction: committed if fn resolves, rolled back if it throws. On Postgres
   * BEGIN goes out with the first statement and COMMIT with the atCommit writes (one round trip
   * each pair), so a transaction of n statements costs n round trips, plus one for the COMMIT
   * when nothing was queued with atCommit.
   */
  tx<T>(fn: (sql: TxSql) => Promise<T>): Promise<T>;
  /** Like tx, with the transaction's first statement given up front; fn gets its rows. */
  txFrom<R extends Row, T>(first: FirstStatement, fn: (rows: R[], sql: TxSql) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A transaction's first statement (Db.txFrom). */
export interface FirstStatement {
  text: string;
  params: readonly unknown[];
}

export function assertSchemaName(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name "${schema}"`);
  return schema;
}
