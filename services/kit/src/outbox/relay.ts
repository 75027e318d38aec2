import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import type { Db } from '../db/db.js';
import type { OutgoingEvent } from '../events/envelope.js';
import type { Metrics } from '../metrics.js';
import type { NatsManager } from '../nats/connection.js';
import { AckedPublisher } from './publisher.js';
import { H } from '../events/headers.js';
import { RetryDelays, sleep, type BackoffSettings } from '../faults/backoff.js';
import { extractTraceContext, inSpan, injectTraceHeaders, SpanKind, tracingActive } from '../tracing/propagation.js';

export interface OutboxRelayOptions {
  db: Db;
  nats: NatsManager;
  log: Logger;
  metrics?: Metrics;
  batchSize?: number;
  /** Safety-net poll for rows written by other processes; local writes call committed() or wake(). */
  pollMs?: number;
  /**
   * The poll leaves younger rows alone (default 5000): a row that young is normally being
   * published by the process that committed it (committed()), and claiming it too would only
   * publish it twice. Older rows are orphans (their process died, or committed without a relay).
   */
  orphanAfterMs?: number;
  /** How long rows published by committed() may wait to be deleted together (default 200). */
  deleteAfterMs?: number;
  /**
   * How long a wake() finding the relay asleep waits for more commits before the claim (default
   * 0). Under light load each commit is otherwise its own claim transaction and publish round.
   */
  lingerMs?: number;
  publishTimeoutMs?: number;
  /** Backoff of one row whose publish fails, and of the whole relay when the database fails. */
  retry?: BackoffSettings;
}

const encoder = new TextEncoder();

/** A row's NATS headers: its own, with the trace context of the publish (if any) instead of the row's. */
function natsHeadersOf(row: Pick<OutboxRow, 'event_id' | 'headers'>, trace: Record<string, string> | undefined): MsgHdrs {
  const h = natsHeaders();
  // First: nats-server 2.9 takes the first occurrence of "Nats-Msg-Id" anywhere in the header
  // block, so a header value containing that text (a client's correlation id) must not come
  // before it.
  h.set(H.msgId, row.event_id);
  for (const [k, v] of Object.entries(row.headers)) {
    if (k !== 'traceparent' && k !== 'tracestate') h.set(k, v);
  }
  if (trace) for (const [k, v] of Object.entries(trace)) h.set(k, v);
  return h;
}

/** Puts rows whose publish failed back as they were: same id (their order, their backoff), same created_at (the lag). */
const REINSERT = `INSERT INTO outbox (id, event_id, subject, headers, payload, created_at)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::timestamptz[])`;

function reinsertParams(rows: readonly OutboxRow[]): unknown[] {
  return [
    rows.map((r) => String(r.id)),
    rows.map((r) => r.event_id),
    rows.map((r) => r.subject),
    rows.map((r) => JSON.stringify(r.headers)),
    rows.map((r) => r.payload),
    // The server's own text of it: microseconds kept.
    rows.map((r) => r.created_text ?? new Date(r.created_at).toISOString()),
  ];
}

interface OutboxRow {
  id: number;
  event_id: string;
  subject: string;
  headers: Record<string, string>;
  payload: string;
  created_at: Date | string;
  /** created_at as the server printed it (Postgres claim only). */
  created_text?: string;
  [k: string]: unknown;
}

/** A row whose publish failed: not claimed again before `at`. */
interface RowRetry {
  delays: RetryDelays;
  at: number;
}

/**
 * Publishes outbox rows to JetStream, then deletes them. Two ways in:
 *
 * - committed(events): the process that committed the rows hands over their events, and they are
 *   published at once from memory — no claim transaction — and their rows deleted a little later,
 *   many in one statement. This is the path of every local commit.
 * - the claim: rows are claimed (deleted, locked) in id order and published, on wake() (a local
 *   commit whose events the caller doesn't hold), at start and by the slow poll (rows older than
 *   orphanAfterMs: another process died before its delete, or wrote without a relay).
 *
 * A crash between publish and delete (either way) republishes the same rows with the same
 * Nats-Msg-Id, which JetStream drops as duplicates inside the stream's duplicate window
 * (consumers' processed_events cover the rest). It never spins: it sleeps until wake() or the
 * slow poll.
 *
 * An event of committed() whose publish fails is handed to the claim (as if by wake()), which
 * retries it with the backoff below. A row whose publish fails does not hold the others back: the
 * rows of its batch that were published are deleted all the same (on Postgres the claim deletes the batch and the failed rows
 * are put back as they were, in the same transaction, which commits), and
 * the failing row alone waits out its own backoff (cockatiel's exponential curve) before it is
 * claimed again, so a row that keeps failing never makes the relay republish the rest.
 */
export class OutboxRelay {
  readonly #batchSize: number;
  readonly #pollMs: number;
  readonly #lingerMs: number;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #publishTimeoutMs: number;
  readonly #retry: BackoffSettings;
  #running = false;
  #loop: Promise<void> | undefined;
  #wakeup: AbortController | undefined;
  #woken = false;
  /** Relay-level failures in a row (database away): the whole loop backs off. */
  readonly #failures: RetryDelays;
  /** Rows whose publish failed, by outbox id. */
  readonly #rowRetries = new Map<number, RowRetry>();
  readonly #orphanAfterMs: number;
  readonly #deleteAfterMs: number;
  /** Event ids of committed() being published or published and not yet deleted: never claimed here. */
  readonly #direct = new Set<string>();
  /** Event ids published by committed() whose rows are still to be deleted. */
  #toDelete: string[] = [];
  #deleteTimer: ReturnType<typeof setTimeout> | undefined;
  #deleting: Promise<void> | undefined;
  readonly #deleteFailures: RetryDelays;
  /** Publishes of committed() under way (stop() waits for them). */
  readonly #publishing = new Set<Promise<void>>();
  /**
   * Rows of this process are in the table unpublished (wake(), a failed or skipped committed()):
   * the next cycle claims every row, not only orphans, even if it is the poll's.
   */
  #owed = false;
  /** committed() calls in a row whose publishes failed (a stream away fails every commit): logged sparingly. */
  #directFailures = 0;
  /** Publishes and their acks on the current connection (made again for a new connection). */
  #publisher: AckedPublisher | undefined;

  constructor(private readonly o: OutboxRelayOptions) {
    this.#batchSize = o.batchSize ?? 256;
    this.#pollMs = o.pollMs ?? 1000;
    this.#lingerMs = Math.max(0, o.lingerMs ?? 0);
    this.#publishTimeoutMs = o.publishTimeoutMs ?? 5000;
    this.#retry = o.retry ?? { initialMs: 250, maxMs: 10_000 };
    this.#failures = new RetryDelays(this.#retry);
    this.#orphanAfterMs = Math.max(0, o.orphanAfterMs ?? 5000);
    this.#deleteAfterMs = Math.max(0, o.deleteAfterMs ?? 200);
    this.#deleteFailures = new RetryDelays(this.#retry);
  }

  /** Rows currently waiting out a publish backoff (for tests and metrics). */
  get retrying(): number {
    return this.#rowRetries.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /**
   * The rows of these events were just committed by this process: publish them now, in this
   * order (after earlier calls'), and delete their rows afterwards. Call it once the commit has
   * succeeded, never before. Publishes that fail (or can't start: NATS away, relay stopped) are
   * left to the claim and its backoff. Never throws.
   */
  committed(events: readonly OutgoingEvent[]): void {
    if (events.length === 0) return;
    const conn = this.o.nats.connection();
    if (!this.#running || !conn || !this.o.nats.isConnected()) return this.wake();
    for (const e of events) this.#direct.add(e.id);
    const done: Promise<void> = this.#publishCommitted(this.#publisherFor(conn.nc), events).finally(() => this.#publishing.delete(done));
    this.#publishing.add(done);
  }

  /** Something was committed whose events the caller doesn't hold: claim it now rather than at the next poll. */
  wake(): void {
    this.#owed = true;
    this.#woken = true;
    // While backing off from errors a commit doesn't cut the wait short; stop() still does.
    const sleeping = this.#wakeup;
    if (this.#failures.attempts !== 0 || !sleeping) return;
    if (this.#lingerMs === 0) return sleeping.abort();
    this.#lingerTimer ??= setTimeout(() => sleeping.abort(), this.#lingerMs);
  }

  /** Stops after the batch in flight, the publishes of committed() and one last flush attempt. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return this.#loop;
    this.#running = false;
    this.#wakeup?.abort();
    await this.#loop;
    while (this.#publishing.size) await Promise.allSettled([...this.#publishing]);
    clearTimeout(this.#deleteTimer);
    this.#deleteTimer = undefined;
    await this.#deleting;
    await this.#deletePublished();
    if (this.o.nats.isConnected()) {
      await this.flushOnce().catch((err: unknown) => this.o.log.warn({ err }, 'outbox.final_flush_failed'));
    }
    this.#publisher?.close();
    this.#publisher = undefined;
  }

  /**
   * Publishes one batch and deletes what was published; returns how many rows were sent. A row
   * whose publish failed stays (and backs off); it is not an error of the flush. Exposed for
   * tests and shutdown.
   */
  flushOnce(): Promise<number> {
    return this.#flush(this.#backingOff(Date.now()), 0);
  }

  /**
   * The rows a claim may take: not backing off, not committed() here, and at least minAgeMs old
   * (0: any age). Parameters from $first: bigint[], text[], float8.
   */
  #claimable(first: number, backingOff: number[], minAgeMs: number): { where: string; params: unknown[] } {
    const [a, b, c] = [first, first + 1, first + 2];
    return {
      where: `id <> ALL($${a}::bigint[]) AND event_id <> ALL($${b}::text[])
        AND ($${c}::float8 = 0 OR created_at <= now() - $${c}::float8 * interval '1 millisecond')`,
      params: [backingOff.map(String), [...this.#direct], minAgeMs],
    };
  }

  /** flushOnce, skipping the rows given as backing off and those younger than minAgeMs. */
  async #flush(backingOff: number[], minAgeMs: number): Promise<number> {
    const conn = this.o.nats.connection();
    if (!conn || !this.o.nats.isConnected()) return 0;
    // Every row this process owed is in reach of this claim (or of the next, when it is full).
    const owed = this.#owed;
    if (minAgeMs === 0) this.#owed = false;
    try {
      return await this.#claimAndPublish(this.#publisherFor(conn.nc), backingOff, minAgeMs);
    } catch (err) {
      this.#owed ||= owed;
      throw err;
    }
  }

  async #claimAndPublish(publisher: AckedPublisher, backingOff: number[], minAgeMs: number): Promise<number> {
    const claimable = this.#claimable(2, backingOff, minAgeMs);
    // Postgres may have several replicas of a service: SKIP LOCKED gives each batch to one
    // relay. The claim deletes the rows it locks and goes with BEGIN in one round trip
    // (txFrom); rows whose publish failed are put back, unchanged, before the commit. So a
    // batch is two round trips (BEGIN+claim, COMMIT), three when a publish failed. A crash
    // anywhere before the commit rolls the delete back: the rows are published again, with the
    // same Nats-Msg-Id, which JetStream drops as duplicates.
    if (this.o.db.kind === 'postgres') {
      const claim = {
        text: `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE ${claimable.where} ORDER BY id LIMIT $1
          FOR UPDATE SKIP LOCKED) RETURNING id, event_id, subject, headers, payload, created_at, created_at::text AS created_text`,
        params: [this.#batchSize, ...claimable.params],
      };
      return this.o.db.txFrom<OutboxRow, number>(claim, async (claimed, sql) => {
        const rows = this.#claimed(
          claimed.sort((a, b) => Number(a.id) - Number(b.id)),
          backingOff,
        );
        const failed = await this.#publish(publisher, rows);
        if (failed.length) await sql.query(REINSERT, reinsertParams(failed));
        return rows.length - failed.length;
      });
    }
    // PGlite is one process with one connection, so a plain read is enough and keeps the single
    // connection free for request traffic while publishes are in flight.
    const rows = this.#claimed(
      await this.o.db.query<OutboxRow>(
        `SELECT id, event_id, subject, headers, payload, created_at FROM outbox WHERE ${claimable.where} ORDER BY id LIMIT $1`,
        [this.#batchSize, ...claimable.params],
      ),
      backingOff,
    );
    const failed = new Set((await this.#publish(publisher, rows)).map((r) => Number(r.id)));
    const sent = rows.map((r) => Number(r.id)).filter((id) => !failed.has(id));
    if (sent.length) await this.o.db.query(`DELETE FROM outbox WHERE id = ANY($1::bigint[])`, [sent]);
    return sent.length;
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

  /** Ids of rows still waiting out a publish backoff at `now`. */
  #backingOff(now: number): number[] {
    const ids: number[] = [];
    for (const [id, r] of this.#rowRetries) if (r.at > now) ids.push(id);
    return ids;
  }

  /** When the next backed-off row is due (ms from now), or undefined when none waits. */
  #nextRowDueIn(now: number): number | undefined {
    let at: number | undefined;
    for (const r of this.#rowRetries.values()) at = at === undefined ? r.at : Math.min(at, r.at);
    return at === undefined ? undefined : Math.max(0, at - now);
  }

  /** The rows of a claim, in id order; forgets the backoff of retries deleted meanwhile. */
  #claimed(rows: OutboxRow[], backingOff: number[]): OutboxRow[] {
    if (rows.length < this.#batchSize) {
      // The claim saw every row that isn't backing off: a due retry it didn't return was deleted
      // meanwhile (another replica published it), so its backoff is forgotten.
      const claimed = new Set(rows.map((r) => Number(r.id)));
      const waiting = new Set(backingOff);
      for (const id of this.#rowRetries.keys()) if (!claimed.has(id) && !waiting.has(id)) this.#rowRetries.delete(id);
    }
    return rows;
  }

  /** Publishes rows in id order; returns those whose publish failed (each now backing off). */
  async #publish(publisher: AckedPublisher, rows: OutboxRow[]): Promise<OutboxRow[]> {
    if (rows.length === 0) {
      if (this.#rowRetries.size === 0) this.o.metrics?.outboxLag.set(0);
      return [];
    }
    const oldest = new Date(rows[0]!.created_at).getTime();
    this.o.metrics?.outboxLag.set(Math.max(0, (Date.now() - oldest) / 1000));
    // Issued back to back on one connection, so the server receives them in id order.
    const results = await Promise.allSettled(rows.map((row) => this.#send(publisher, row)));
    const failed: OutboxRow[] = [];
    const now = Date.now();
    let first: { row: OutboxRow; err: unknown; attempts: number; retryInMs: number } | undefined;
    // What was published is deleted (committed) even when other rows of the batch failed: it is
    // never published again because a neighbour failed.
    const sent = this.#tally(
      rows,
      results,
      (row) => this.#rowRetries.delete(Number(row.id)),
      (row, err) => {
        const id = Number(row.id);
        failed.push(row);
        const retry = this.#rowRetries.get(id) ?? { delays: new RetryDelays(this.#retry), at: 0 };
        const delay = retry.delays.next();
        retry.at = now + delay;
        this.#rowRetries.set(id, retry);
        first ??= { row, err, attempts: retry.delays.attempts, retryInMs: delay };
      },
    );
    // One line per batch, after it (so it can say how many failed), and per row only on its
    // first failures (a row may fail for hours).
    if (first && (first.attempts <= 3 || first.attempts % 20 === 0)) {
      const { row, err, attempts, retryInMs } = first;
      this.o.log.warn(
        { err, subject: row.subject, eventId: row.event_id, attempts, retryInMs, failedInBatch: failed.length, sentInBatch: sent },
        'outbox.publish_failed',
      );
    }
    return failed;
  }

  /**
   * The accounting both ways of publishing share, in the batch's order: the published and failed
   * counters per event, then the relayed total and the batch size of what went out. `onSent` and
   * `onFailed` do what differs.
   * Returns how many went out.
   */
  #tally<T extends { subject: string }>(
    batch: readonly T[],
    results: readonly PromiseSettledResult<unknown>[],
    onSent: (item: T) => void,
    onFailed: (item: T, err: unknown) => void,
  ): number {
    let sent = 0;
    results.forEach((r, i) => {
      const item = batch[i]!;
      if (r.status === 'fulfilled') {
        sent++;
        onSent(item);
        this.o.metrics?.published.inc({ subject: item.subject });
        return;
      }
      this.o.metrics?.failed.inc({ subject: item.subject, kind: 'publish' });
      onFailed(item, r.reason);
    });
    if (sent > 0) {
      this.o.metrics?.outboxRelayed.inc(sent);
      this.o.metrics?.outboxBatchSize.observe(sent);
    }
    return sent;
  }

  /**
   * One publish, in a producer span that is a child of the context the row was written in. Without
   * tracing (no SDK, no propagator) the span and the trace headers would be no-ops: skipped.
   */
  #send(publisher: AckedPublisher, row: Pick<OutboxRow, 'event_id' | 'subject' | 'headers' | 'payload'>): Promise<unknown> {
    if (!tracingActive()) return publisher.publish(row.subject, encoder.encode(row.payload), natsHeadersOf(row, undefined));
    return inSpan(
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
      // The consumer's span is a child of this publish span.
      async () => publisher.publish(row.subject, encoder.encode(row.payload), natsHeadersOf(row, injectTraceHeaders({}))),
    );
  }

  /** committed()'s publishes: what went out is deleted later, what failed is left to the claim. */
  async #publishCommitted(publisher: AckedPublisher, events: readonly OutgoingEvent[]): Promise<void> {
    // Issued back to back (each publish is sent before #send returns), so in the order given.
    const results = await Promise.allSettled(
      events.map((e) => this.#send(publisher, { event_id: e.id, subject: e.subject, headers: e.headers, payload: e.payload })),
    );
    let firstError: unknown;
    const sent = this.#tally(
      events,
      results,
      (e) => this.#toDelete.push(e.id),
      (e, err) => {
        firstError ??= err;
        this.#direct.delete(e.id);
      },
    );
    if (sent > 0) this.#scheduleDelete(this.#toDelete.length >= this.#batchSize ? 0 : this.#deleteAfterMs);
    if (firstError === undefined) {
      this.#directFailures = 0;
      return;
    }
    // The rows are in the table: the claim retries them, each with its own backoff from now on.
    const failures = ++this.#directFailures;
    if (failures === 1 || failures % 100 === 0) {
      this.o.log.warn({ err: firstError, failed: events.length - sent, of: events.length, failures }, 'outbox.publish_failed');
    }
    this.wake();
  }

  /** The publisher of this connection: a new one when NATS gave a new connection or its ack subscription ended. */
  #publisherFor(nc: NatsConnection): AckedPublisher {
    const current = this.#publisher;
    if (current?.nc === nc && current.usable) return current;
    current?.close(new Error('the NATS connection was replaced'));
    return (this.#publisher = new AckedPublisher(nc, this.#publishTimeoutMs));
  }

  #scheduleDelete(ms: number): void {
    if (this.#deleteTimer !== undefined || this.#deleting) return;
    this.#deleteTimer = setTimeout(() => {
      this.#deleteTimer = undefined;
      this.#deleting = this.#deletePublished().then((retryInMs) => {
        this.#deleting = undefined;
        // Failed, or more was published while this delete ran.
        if (this.#toDelete.length && this.#running) this.#scheduleDelete(retryInMs ?? this.#deleteAfterMs);
      });
    }, ms);
  }

  /**
   * Deletes the rows of events committed() published, all in one statement. When the database
   * fails they stay queued and the next attempt backs off; were the process to die first, the
   * rows are orphans that a poll republishes (same Nats-Msg-Id: dropped as duplicates). Resolves
   * to the backoff before the next attempt when it failed.
   */
  async #deletePublished(): Promise<number | undefined> {
    const ids = this.#toDelete;
    if (ids.length === 0) return undefined;
    this.#toDelete = [];
    try {
      await this.o.db.query(`DELETE FROM outbox WHERE event_id = ANY($1::text[])`, [ids]);
      for (const id of ids) this.#direct.delete(id);
      this.#deleteFailures.reset();
      return undefined;
    } catch (err) {
      this.#toDelete = [...ids, ...this.#toDelete];
      const retryInMs = this.#deleteFailures.next();
      const attempts = this.#deleteFailures.attempts;
      if (attempts === 1 || attempts % 20 === 0) this.o.log.warn({ err, rows: ids.length, attempts, retryInMs }, 'outbox.delete_failed');
      return retryInMs;
    }
  }

  /**
   * Whether a row may be claimable now: one plain read, no transaction. The poll asks this first,
   * so an idle relay costs one round trip a poll instead of a claim transaction's two.
   */
  async #anyDue(backingOff: number[], minAgeMs: number): Promise<boolean> {
    if (this.o.db.kind !== 'postgres') return true;
    const claimable = this.#claimable(1, backingOff, minAgeMs);
    const [row] = await this.o.db.query<{ due: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM outbox WHERE ${claimable.where}) AS due`,
      claimable.params,
    );
    if (!row?.due && this.#rowRetries.size === 0) this.o.metrics?.outboxLag.set(0);
    return Boolean(row?.due);
  }

  async #run(): Promise<void> {
    // Whether this cycle was started by the poll timer rather than by start(), a commit or a full batch.
    let polled = false;
    while (this.#running) {
      let sent = 0;
      let wait: number;
      try {
        const committed = this.#woken;
        this.#woken = false;
        const backingOff = this.#backingOff(Date.now());
        // The poll alone looks for orphans only; rows this process owes are claimed at any age.
        const minAgeMs = polled && !committed && !this.#owed && this.#rowRetries.size === 0 ? this.#orphanAfterMs : 0;
        if (!polled || committed || (await this.#anyDue(backingOff, minAgeMs))) sent = await this.#flush(backingOff, minAgeMs);
        this.#failures.reset();
        wait = Math.min(this.#pollMs, this.#nextRowDueIn(Date.now()) ?? this.#pollMs);
      } catch (err) {
        // The database (or the claim itself) failed: the whole relay backs off.
        wait = this.#failures.next();
        const failures = this.#failures.attempts;
        if (failures === 1 || failures % 20 === 0) this.o.log.warn({ err, failures, retryInMs: wait }, 'outbox.relay_error');
      }
      if (!this.#running) break;
      polled = false;
      const failing = this.#failures.attempts > 0;
      if (sent >= this.#batchSize) continue;
      // About to sleep. While NATS is away, rows back off or the database fails, flushOnce can't
      // see the whole table, so the lag gauge is read from it here and keeps growing. Otherwise
      // the flush just set it (0 for an empty claim); a query per cycle would be one more round
      // trip per event.
      const woken = (): boolean => this.#woken && !failing;
      if (!woken() && (failing || this.#rowRetries.size > 0 || !this.o.nats.isConnected())) await this.refreshLag();
      // A wake() during the flush or the lag query found no sleeper to resolve: its commit waits
      // only the linger, not a whole poll interval (1 s).
      if (woken() && this.#lingerMs === 0) continue;
      const wakeup = new AbortController();
      this.#wakeup = wakeup;
      await sleep(woken() ? this.#lingerMs : wait, wakeup.signal);
      polled = !wakeup.signal.aborted && !woken();
      this.#wakeup = undefined;
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
    }
  }
}
