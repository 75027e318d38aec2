import { headers as natsHeaders } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Db, Sql } from '../db/db.js';
import type { Metrics } from '../metrics.js';
import type { NatsManager } from '../nats/connection.js';
import { H } from '../events/headers.js';
import { extractTraceContext, inSpan, injectTraceHeaders, SpanKind } from '../tracing/propagation.js';

export interface OutboxRelayOptions {
  db: Db;
  nats: NatsManager;
  log: Logger;
  metrics?: Metrics;
  batchSize?: number;
  /** Safety-net poll for rows written by other processes; local writes call wake(). */
  pollMs?: number;
  publishTimeoutMs?: number;
}

interface OutboxRow {
  id: number;
  event_id: string;
  subject: string;
  headers: Record<string, string>;
  payload: string;
  created_at: Date | string;
  [k: string]: unknown;
}

/**
 * Publishes outbox rows to JetStream in id order, then deletes them. A crash between publish
 * and delete republishes the same rows with the same Nats-Msg-Id, which JetStream drops as
 * duplicates inside the stream's duplicate window (consumers' processed_events cover the rest).
 * It never spins: it sleeps until wake() (a local commit) or the slow poll.
 */
export class OutboxRelay {
  readonly #batchSize: number;
  readonly #pollMs: number;
  readonly #publishTimeoutMs: number;
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeup: (() => void) | undefined;
  #woken = false;
  #failures = 0;

  constructor(private readonly o: OutboxRelayOptions) {
    this.#batchSize = o.batchSize ?? 256;
    this.#pollMs = o.pollMs ?? 1000;
    this.#publishTimeoutMs = o.publishTimeoutMs ?? 5000;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Something was committed: publish now rather than at the next poll. */
  wake(): void {
    this.#woken = true;
    // While backing off from errors a commit doesn't cut the wait short; stop() still does.
    if (this.#failures === 0) this.#wakeup?.();
  }

  /** Stops after the batch in flight and one last flush attempt. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return this.#loop;
    this.#running = false;
    this.#wakeup?.();
    await this.#loop;
    if (this.o.nats.isConnected()) {
      await this.flushOnce().catch((err: unknown) => this.o.log.warn({ err }, 'outbox.final_flush_failed'));
    }
  }

  /** Publishes one batch; returns how many rows were sent. Exposed for tests and shutdown. */
  async flushOnce(): Promise<number> {
    const conn = this.o.nats.current;
    if (!conn || !this.o.nats.isConnected()) return 0;
    // Postgres may have several replicas of a service: SKIP LOCKED gives each batch to one
    // relay. PGlite is one process with one connection, so a plain read is enough and keeps
    // the single connection free for request traffic while publishes are in flight.
    if (this.o.db.kind === 'postgres') {
      return this.o.db.tx(async (sql) => {
        const rows = await this.#claim(sql, 'FOR UPDATE SKIP LOCKED');
        return this.#publishAndDelete(sql, rows);
      });
    }
    const rows = await this.#claim(this.o.db, '');
    return this.#publishAndDelete(this.o.db, rows);
  }

  /** Sets orderflow_outbox_lag_seconds to the oldest unsent row's age (0 when empty), by the DB clock. */
  async refreshLag(): Promise<void> {
    if (!this.o.metrics) return;
    try {
      const [row] = await this.o.db.query<{ age: number | string | null }>(
        `SELECT EXTRACT(EPOCH FROM (now() - min(created_at)))::float8 AS age FROM outbox`,
      );
      this.o.metrics.outboxLag.set(Math.max(0, Number(row?.age ?? 0)));
    } catch (err) {
      this.o.log.debug({ err }, 'outbox.lag_query_failed');
    }
  }

  async #claim(sql: Sql, lock: string): Promise<OutboxRow[]> {
    return sql.query<OutboxRow>(
      `SELECT id, event_id, subject, headers, payload, created_at FROM outbox ORDER BY id LIMIT $1 ${lock}`,
      [this.#batchSize],
    );
  }

  async #publishAndDelete(sql: Sql, rows: OutboxRow[]): Promise<number> {
    if (rows.length === 0) {
      this.o.metrics?.outboxLag.set(0);
      return 0;
    }
    const oldest = new Date(rows[0]!.created_at).getTime();
    this.o.metrics?.outboxLag.set(Math.max(0, (Date.now() - oldest) / 1000));
    const js = this.o.nats.current!.js;
    const encoder = new TextEncoder();
    // Issued back to back on one connection, so the server receives them in id order.
    const results = await Promise.allSettled(
      rows.map((row) =>
        inSpan(
          `${row.subject} publish`,
          {
            kind: SpanKind.PRODUCER,
            parent: extractTraceContext(row.headers),
            attributes: {
              'messaging.system': 'nats',
              'messaging.operation.type': 'publish',
              'messaging.destination.name': row.subject,
              'messaging.message.id': row.event_id,
            },
          },
          async () => {
            const h = natsHeaders();
            // First: nats-server 2.9 takes the first occurrence of "Nats-Msg-Id" anywhere in the
            // header block, so a header value containing that text (a client's correlation id)
            // must not come before it.
            h.set(H.msgId, row.event_id);
            for (const [k, v] of Object.entries(row.headers)) {
              if (k !== 'traceparent' && k !== 'tracestate') h.set(k, v);
            }
            // The consumer's span is a child of this publish span.
            const trace = injectTraceHeaders({});
            for (const [k, v] of Object.entries(trace)) h.set(k, v);
            // No msgID option: the client would re-set the header and move it behind the others.
            return js.publish(row.subject, encoder.encode(row.payload), { headers: h, timeout: this.#publishTimeoutMs });
          },
        ),
      ),
    );
    const sent: number[] = [];
    results.forEach((r, i) => {
      const row = rows[i]!;
      if (r.status === 'fulfilled') {
        sent.push(row.id);
        this.o.metrics?.published.inc({ subject: row.subject });
      } else {
        this.o.metrics?.failed.inc({ subject: row.subject, kind: 'publish' });
        if (sent.length === i) this.o.log.warn({ err: r.reason, subject: row.subject, eventId: row.event_id }, 'outbox.publish_failed');
      }
    });
    if (sent.length) await sql.query(`DELETE FROM outbox WHERE id = ANY($1::bigint[])`, [sent]);
    this.o.metrics?.outboxRelayed.inc(sent.length);
    if (sent.length < rows.length) throw new Error(`published ${sent.length} of ${rows.length} outbox rows`);
    return sent.length;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let sent = 0;
      try {
        this.#woken = false;
        sent = await this.flushOnce();
        this.#failures = 0;
      } catch (err) {
        this.#failures++;
        if (this.#failures === 1 || this.#failures % 20 === 0) this.o.log.warn({ err, failures: this.#failures }, 'outbox.relay_error');
      }
      if (!this.#running) break;
      if (sent >= this.#batchSize || (this.#woken && this.#failures === 0)) continue;
      // About to sleep. While NATS is away or publishing fails, flushOnce can't see the table, so
      // the lag gauge is read from it here and keeps growing. Otherwise the flush just set it
      // (0 for an empty claim); a query per cycle would be one more round trip per event.
      if (this.#failures > 0 || !this.o.nats.isConnected()) await this.refreshLag();
      // A wake() while the lag query ran found no sleeper to resolve: don't sleep through it,
      // or a commit waits a whole poll interval (1 s) to be published.
      if (this.#woken && this.#failures === 0) continue;
      const wait = this.#failures ? Math.min(this.#pollMs * 2 ** Math.min(this.#failures, 4), 10_000) : this.#pollMs;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.#wakeup = done;
      });
      this.#wakeup = undefined;
    }
  }
}
