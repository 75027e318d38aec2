import type { TxSql } from './db.js';

/**
 * State that lives as long as one transaction: the rows it holds locked as it has changed them,
 * the changes it will write at commit. The kit runs the handlers of a consumer batch one after
 * another in one transaction, each seeing only the transaction's handle (TxSql), so the handle is
 * the key: every handler of the batch gets the same state, the next transaction a new one, and
 * nothing outlives the transaction (the state goes with the handle).
 *
 * The returned function gives the transaction's state, made by `create` on first use. `onCommit`,
 * if given, is registered (sql.beforeCommit) when the state is made: it runs once, after the
 * transaction's function has returned, and may queue the writes that carry the state into the
 * database; it does not run when the function throws, since nothing commits then.
 */
export function txState<T>(create: (sql: TxSql) => T, onCommit?: (sql: TxSql, state: T) => void): (sql: TxSql) => T {
  const states = new WeakMap<TxSql, { state: T }>();
  return (sql) => {
    const known = states.get(sql);
    if (known) return known.state;
    const state = create(sql);
    states.set(sql, { state });
    if (onCommit) sql.beforeCommit(() => onCommit(sql, state));
    return state;
  };
}
