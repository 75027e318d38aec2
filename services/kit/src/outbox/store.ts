import type { TxSql } from '../db/db.js';
import type { Migration } from '../db/migrate.js';
import type { OutgoingEvent } from '../events/envelope.js';
import { injectTraceHeaders } from '../tracing/propagation.js';

export const OUTBOX_MIGRATIONS: readonly Migration[] = [
  {
    id: 'kit-001-outbox',
    sql: `
      CREATE TABLE IF NOT EXISTS outbox (
        id bigserial PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        subject text NOT NULL,
        headers jsonb NOT NULL,
        payload text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE IF NOT EXISTS processed_events (
        consumer text NOT NULL,
        event_id text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
      );`,
  },
];

/**
 * Adds events to the outbox inside the caller's transaction: they are published if and only if
 * the state change commits. The insert is the transaction's last write (atCommit: on Postgres it
 * travels with the COMMIT). The current trace context is taken now and travels with the row, so
 * the relay's publish joins the trace of the request or handler that produced the event.
 * Resolves at once (a promise so that `db.tx((sql) => enqueue(sql, events))` reads as any write).
 */
export function enqueue(sql: TxSql, events: readonly OutgoingEvent[]): Promise<void> {
  if (events.length > 0) sql.atCommit(outboxInsertSql(1), outboxParams(events));
  return Promise.resolve();
}

/**
 * The outbox insert as SQL taking four array parameters from `$first`, for callers that fold it
 * into a larger statement (a single statement is atomic without BEGIN/COMMIT round trips).
 */
export function outboxInsertSql(first: number): string {
  const [a, b, c, d] = [first, first + 1, first + 2, first + 3];
  return `INSERT INTO outbox (event_id, subject, headers, payload) SELECT * FROM unnest($${a}::text[],
    $${b}::text[], $${c}::jsonb[], $${d}::text[])`;
}

/** The four parameter arrays of outboxInsertSql, trace context taken from the active span. */
export function outboxParams(events: readonly OutgoingEvent[]): [string[], string[], string[], string[]] {
  const ids: string[] = [];
  const subjects: string[] = [];
  const headers: string[] = [];
  const payloads: string[] = [];
  for (const e of events) {
    ids.push(e.id);
    subjects.push(e.subject);
    // Context captured earlier (per message of a consumer batch, at emit()) wins over whatever
    // span happens to be active while the batch is written. Set on the event itself: the relay's
    // committed() publishes from the event, and must send what the row holds.
    if (!e.headers.traceparent) injectTraceHeaders(e.headers);
    headers.push(JSON.stringify(e.headers));
    payloads.push(e.payload);
  }
  return [ids, subjects, headers, payloads];
}
