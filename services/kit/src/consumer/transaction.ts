import type { Logger } from 'pino';
import type { Db, TxSql } from '../db/db.js';
import { makeEvent, type OutgoingEvent } from '../events/envelope.js';
import { enqueue } from '../outbox/store.js';
import type { Names } from '../topology.js';
import { injectTraceHeaders } from '../tracing/propagation.js';
import { AbandonedWorkError, HandlerDeadlineError } from './failure.js';
import { within, type Work } from './work.js';

export interface AfterCommit {
  w: Work;
  fn: () => Promise<void>;
}

export interface Committed {
  /** Works whose handler ran (the rest were duplicates of events already handled). */
  handled: Set<Work>;
  after: AfterCommit[];
  /** Every event the transaction put in the outbox, in order: the relay publishes them now. */
  events: OutgoingEvent[];
}

export interface TransactionOptions {
  db: Db;
  names: Names;
  durable: string;
  log: Logger;
  /** The handlers of one transaction get this long; then the work is abandoned and rolled back. */
  deadlineMs: number;
}

/**
 * Handles some messages in one transaction: records their event ids in processed_events, runs
 * the fresh ones' handlers in order, queues their events in the outbox. Resolves once committed.
 *
 * A deadline bounds it: a handler that hangs (a call that never answers, a lock behind a stuck
 * session) would otherwise keep its messages alive with heartbeats forever and, with one worker,
 * stop the whole durable. At the deadline this rejects with HandlerDeadlineError and the work is
 * abandoned: every further statement of it fails, it can never commit, and on Postgres its
 * session is terminated so the transaction is rolled back and its locks released now (rather
 * than when idle_in_transaction_session_timeout or statement_timeout ends it).
 */
export async function runTransaction(o: TransactionOptions, works: Work[]): Promise<Committed> {
  const state: { abandoned: boolean; pid?: number } = { abandoned: false };
  const guard = (sql: TxSql): TxSql => ({
    query: (text, params) => (state.abandoned ? Promise.reject(new AbandonedWorkError()) : sql.query(text, params)),
    exec: (text) => (state.abandoned ? Promise.reject(new AbandonedWorkError()) : sql.exec(text)),
    atCommit: (text, params) => sql.atCommit(text, params),
    write: (text, params) => {
      if (state.abandoned) throw new AbandonedWorkError();
      sql.write(text, params);
    },
    beforeCommit: (fn) => sql.beforeCommit(fn),
  });
  const after: AfterCommit[] = [];
  const events: OutgoingEvent[] = [];
  // The event ids go with BEGIN in one round trip (txFrom); the handlers' queued writes and the
  // outbox insert (enqueue) go with COMMIT: on Postgres a batch is two round trips plus one per
  // statement its handlers await.
  // The session's pid comes with the first (no extra round trip): it is what a deadline
  // terminates. The answer is one row naming the ids that were recorded already: none, as a rule,
  // where returning the fresh ones cost a row each to send and parse.
  const first = {
    text: `WITH batch AS (SELECT unnest($2::text[]) AS event_id),
     fresh AS (INSERT INTO processed_events (consumer, event_id) SELECT $1, event_id FROM batch
      ON CONFLICT DO NOTHING RETURNING event_id)
     SELECT pg_backend_pid() AS pid, ARRAY(SELECT event_id FROM batch EXCEPT SELECT event_id FROM fresh) AS seen`,
    params: [o.durable, works.map((w) => w.event.id)],
  };
  const tx = o.db.txFrom<{ pid: number; seen: string[] }, Set<Work>>(first, async (rows, sql) => {
    state.pid = rows[0]?.pid;
    const handled = await transact(o, guard(sql), works, rows[0]?.seen ?? [], after, events);
    // The handlers returned after the deadline: roll back rather than commit abandoned work.
    if (state.abandoned) throw new AbandonedWorkError();
    return handled;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      state.abandoned = true;
      reject(new HandlerDeadlineError(o.deadlineMs, works.length));
    }, o.deadlineMs);
  });
  try {
    const handled = await Promise.race([tx, deadline]);
    return { handled, after, events };
  } catch (err) {
    if (err instanceof HandlerDeadlineError) abandon(o, state.pid, tx, works);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function abandon(o: TransactionOptions, pid: number | undefined, tx: Promise<unknown>, works: Work[]): void {
  const ids = works.map((w) => w.event.id);
  o.log.warn({ consumer: o.durable, deadlineMs: o.deadlineMs, eventIds: ids, pid }, 'consumer.handler_abandoned');
  tx.then(
    () => undefined,
    (err: unknown) =>
      o.log.info({ consumer: o.durable, eventIds: ids, err: (err as Error).message }, 'consumer.abandoned_work_rolled_back'),
  );
  if (o.db.kind === 'postgres' && pid) {
    o.db
      .query('SELECT pg_terminate_backend($1)', [pid])
      .catch((err: unknown) => o.log.warn({ consumer: o.durable, pid, err }, 'consumer.abandoned_session_not_terminated'));
  }
}

async function transact(
  o: TransactionOptions,
  sql: TxSql,
  works: Work[],
  seen: readonly string[],
  after: AfterCommit[],
  events: OutgoingEvent[],
): Promise<Set<Work>> {
  const done = new Set(seen);
  const handled = new Set<Work>();
  const out: OutgoingEvent[] = [];
  // A duplicate of an event already handled, earlier or in this very batch, is not handled.
  for (const w of works) {
    if (done.has(w.event.id)) continue;
    done.add(w.event.id);
    handled.add(w);
  }
  const peers = [...handled].map((w) => w.event);
  for (const w of handled) {
    await within(w, () =>
      w.handler({
        event: w.event,
        sql,
        log: o.log,
        deliveryCount: w.deliveryCount,
        peers,
        // Trace context is taken now, inside this message's span: the outbox insert runs
        // once for the whole batch, outside any one message's context.
        emit: (type, data) => {
          const e = makeEvent(o.names, type, data);
          injectTraceHeaders(e.headers);
          out.push(e);
        },
        afterCommit: (fn) => after.push({ w, fn }),
        enqueued: (written) => void events.push(...written),
      }),
    );
  }
  await enqueue(sql, out);
  // After the handlers' own outbox rows: the batch insert travels with COMMIT, after every write.
  events.push(...out);
  return handled;
}
