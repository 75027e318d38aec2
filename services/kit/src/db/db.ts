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
  /**
   * Queues a write whose rows are not needed (an UPDATE whose result the caller already knows):
   * it runs in order, before the transaction's next statement, and on Postgres travels in the
   * same batch as that statement or as the COMMIT, so it costs no round trip of its own. Its
   * failure is reported by that next statement (or the commit), and nothing commits. Rows it
   * changes are visible to every later statement of the transaction, as with query().
   */
  write(text: string, params: unknown[]): void;
  /**
   * Runs `fn` once the transaction's function has returned, just before its queued writes go
   * out with COMMIT; several run in the order registered, and each may queue writes (write,
   * atCommit). Where a transaction that kept changes to rows it holds locked in memory writes
   * them, one statement for many (a consumer batch's stock changes). Not run when the function
   * throws: nothing commits then.
   */
  beforeCommit(fn: () => void): void;
}

export interface Db extends Sql {
  readonly kind: 'postgres' | 'pglite';
  readonly schema: string;
  /**
   * Runs fn in one transaction: committed if fn resolves, rolled back if it throws. On Postgres
   * BEGIN goes out with the first statement, queued writes with the statement after them and
   * COMMIT with the writes still queued (one round trip each batch), so a transaction costs one
   * round trip per query() plus one for the COMMIT.
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
