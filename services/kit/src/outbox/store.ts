import type { Sql } from '../db/db.js';
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
 * the state change commits. The current trace context travels with the row so the relay's
 * publish joins the trace of the request or handler that produced the event.
 */
export async function enqueue(sql: Sql, events: readonly OutgoingEvent[]): Promise<void> {
  if (events.length === 0) return;
  const ids: string[] = [];
  const subjects: string[] = [];
  const headers: string[] = [];
  const payloads: string[] = [];
  for (const e of events) {
    ids.push(e.id);
    subjects.push(e.subject);
    headers.push(JSON.stringify(injectTraceHeaders({ ...e.headers })));
    payloads.push(e.payload);
  }
  await sql.query(
    `INSERT INTO outbox (event_id, subject, headers, payload)
     SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[])`,
    [ids, subjects, headers, payloads],
  );
}
