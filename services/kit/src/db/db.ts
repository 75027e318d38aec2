/** The one database interface services see, over real Postgres or embedded PGlite. */
export type Row = Record<string, unknown>;

export interface Sql {
  query<R extends Row = Row>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

export interface Db extends Sql {
  readonly kind: 'postgres' | 'pglite';
  readonly schema: string;
  /** Runs fn in one transaction: committed if fn resolves, rolled back if it throws. */
  tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T>;
  /**
   * Like tx, with the transaction's first statement given up front; fn gets its rows. On Postgres
   * it travels with BEGIN in one round trip (one simple-protocol query, its parameters inlined as
   * escaped literals, typed by the server as a bound parameter would be): one round trip less
   * per transaction. Only for small values that may show in logs and traces (statement texts do),
   * and a text without `$n` inside quotes.
   */
  txFrom<R extends Row, T>(first: FirstStatement, fn: (rows: R[], sql: Sql) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A transaction's first statement (Db.txFrom): parameters are strings, numbers or string arrays. */
export interface FirstStatement {
  text: string;
  params: ReadonlyArray<string | number | readonly string[]>;
}

export function assertSchemaName(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name "${schema}"`);
  return schema;
}
