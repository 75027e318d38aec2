import type { ClaimWindow, Sql } from '@orderflow/kit';

export type PaymentStatus = 'charging' | 'captured' | 'declined' | 'failed' | 'cancelled' | 'refunded';

export interface PaymentRow {
  order_id: string;
  status: PaymentStatus;
  amount: number | null;
  currency: string | null;
  correlation_id: string;
  charge_id: string | null;
  attempts: number;
  reason: string | null;
  cancel_requested: boolean;
  in_doubt: boolean;
  in_doubt_since: Date | string | null;
  in_doubt_checks: number;
  in_doubt_next_at: Date | string | null;
  in_doubt_gave_up_at: Date | string | null;
  in_doubt_last_sent_at: Date | string | null;
  order_status: string | null;
  answered: boolean;
  updated_at: Date | string;
  [k: string]: unknown;
}

export interface PaymentView {
  orderId: string;
  status: PaymentStatus;
  amount: number | null;
  currency?: string;
  attempts: number;
  chargeId?: string;
  reason?: string;
  /**
   * Present while the gateway's answer is unknown (an attempt got no answer). `gaveUpAt` set: the
   * re-checks stopped at the horizon with nothing found, and a person must look at the gateway.
   */
  inDoubt?: { since?: string; lastAttemptSentAt?: string; checks: number; nextCheckAt?: string; gaveUpAt?: string };
}

const iso = (d: Date | string | null): string | undefined => (d === null ? undefined : new Date(d).toISOString());

export function toView(r: PaymentRow): PaymentView {
  return {
    orderId: r.order_id,
    status: r.status,
    amount: r.amount === null ? null : Number(r.amount),
    ...(r.currency ? { currency: r.currency } : {}),
    attempts: r.attempts,
    ...(r.charge_id ? { chargeId: r.charge_id } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.in_doubt
      ? {
          inDoubt: {
            since: iso(r.in_doubt_since),
            ...(r.in_doubt_last_sent_at ? { lastAttemptSentAt: iso(r.in_doubt_last_sent_at) } : {}),
            checks: r.in_doubt_checks,
            ...(r.in_doubt_gave_up_at === null ? { nextCheckAt: iso(r.in_doubt_next_at) } : { gaveUpAt: iso(r.in_doubt_gave_up_at) }),
          },
        }
      : {}),
  };
}

export async function getPayment(sql: Sql, orderId: string, lock = false): Promise<PaymentRow | undefined> {
  const rows = await sql.query<PaymentRow>(`SELECT * FROM payments WHERE order_id = $1${lock ? ' FOR UPDATE' : ''}`, [orderId]);
  return rows[0];
}

/** Claims the order for charging; false when a row already exists (a duplicate or a tombstone). */
export async function insertCharging(
  sql: Sql,
  p: { orderId: string; amount: number; currency: string; correlationId: string },
): Promise<boolean> {
  const rows = await sql.query(
    `INSERT INTO payments (order_id, status, amount, currency, correlation_id) VALUES ($1, 'charging', $2, $3, $4)
     ON CONFLICT (order_id) DO NOTHING RETURNING 1`,
    [p.orderId, p.amount, p.currency, p.correlationId],
  );
  return rows.length === 1;
}

const ms = (param: string) => `make_interval(secs => ${param}::double precision / 1000)`;

/** Rows the recovery sweep must finish: charges left `charging` (a crash after the ack), refunds owed. */
export async function rowsNeedingWork(sql: Sql, olderThanMs: number, limit: number): Promise<PaymentRow[]> {
  return sql.query<PaymentRow>(
    `SELECT * FROM payments
     WHERE (status = 'charging' OR (status = 'captured' AND cancel_requested))
       AND updated_at < now() - ${ms('$1')}
     ORDER BY updated_at LIMIT $2`,
    [olderThanMs, limit],
  );
}

/**
 * Claims charges in doubt whose next check is due, pushing it `leaseMs` out (the check itself then
 * sets the real next time). SKIP LOCKED and the lease keep replicas off each other's rows.
 */
export async function claimInDoubtDue(sql: Sql, o: { limit: number; leaseMs: number; skipLocked: boolean }): Promise<string[]> {
  const rows = await sql.query<{ order_id: string }>(
    `UPDATE payments p SET in_doubt_next_at = now() + ${ms('$2')}
      WHERE p.order_id IN (
        SELECT order_id FROM payments
         WHERE in_doubt AND in_doubt_gave_up_at IS NULL AND (in_doubt_next_at IS NULL OR in_doubt_next_at <= now())
         ORDER BY in_doubt_next_at NULLS FIRST LIMIT $1 FOR UPDATE${o.skipLocked ? ' SKIP LOCKED' : ''})
      RETURNING p.order_id`,
    [o.limit, o.leaseMs],
  );
  return rows.map((r) => r.order_id);
}

/**
 * After a check that found nothing to settle: the next check in `delayMs`, or, once the row has
 * been in doubt longer than `horizonMs`, no more checks (gave up: surfaced, never cleared).
 */
export async function scheduleInDoubtCheck(
  sql: Sql,
  orderId: string,
  delayMs: number,
  horizonMs: number,
): Promise<{ checks: number; gaveUp: boolean; since: string } | undefined> {
  const [row] = await sql.query<{ in_doubt_checks: number; in_doubt_gave_up_at: Date | null; in_doubt_since: Date }>(
    `UPDATE payments
        SET in_doubt_checks = in_doubt_checks + 1,
            in_doubt_next_at = now() + ${ms('$2')},
            in_doubt_gave_up_at = CASE WHEN in_doubt_since < now() - ${ms('$3')} THEN now() END,
            updated_at = now()
      WHERE order_id = $1 AND in_doubt AND in_doubt_gave_up_at IS NULL
      RETURNING in_doubt_checks, in_doubt_gave_up_at, in_doubt_since`,
    [orderId, delayMs, horizonMs],
  );
  return row
    ? { checks: row.in_doubt_checks, gaveUp: row.in_doubt_gave_up_at !== null, since: new Date(row.in_doubt_since).toISOString() }
    : undefined;
}

/** The doubt is over: what the gateway captured for the order has been refunded. */
export async function resolveInDoubt(sql: Sql, orderId: string, chargeId: string | null): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE payments
        SET in_doubt = false, in_doubt_next_at = NULL, in_doubt_checks = in_doubt_checks + 1, charge_id = COALESCE($2, charge_id),
            status = 'refunded', reason = 'in_doubt_capture_refunded', updated_at = now()
      WHERE order_id = $1 AND in_doubt
      RETURNING 1`,
    [orderId, chargeId],
  );
  return rows.length === 1;
}

/**
 * The doubt is over the other way: a lookup made after the gateway's processing deadline for the
 * last attempt found nothing, so nothing was or will be captured. No refund; status stays as it was.
 */
export async function resolveNeverCaptured(sql: Sql, orderId: string): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE payments
        SET in_doubt = false, in_doubt_next_at = NULL, in_doubt_checks = in_doubt_checks + 1,
            reason = 'in_doubt_never_captured', updated_at = now()
      WHERE order_id = $1 AND in_doubt AND in_doubt_gave_up_at IS NULL
      RETURNING 1`,
    [orderId],
  );
  return rows.length === 1;
}

export async function countInDoubt(sql: Sql): Promise<{ checking: number; unresolved: number }> {
  const [row] = await sql.query<{ checking: number; unresolved: number }>(
    `SELECT count(*) FILTER (WHERE in_doubt_gave_up_at IS NULL)::int AS checking, count(*) FILTER (WHERE
      in_doubt_gave_up_at IS NOT NULL)::int AS unresolved
       FROM payments WHERE in_doubt`,
  );
  return row ?? { checking: 0, unresolved: 0 };
}

export interface UnsettledCapture {
  orderId: string;
  /** Lookups so far, this one included. */
  checks: number;
  ageMs: number;
}

/**
 * Claims captures whose order outcome we never heard (no orders.cancelled, and not yet seen
 * confirmed) that are older than `olderThanMs`, pushing their next lookup `leaseMs` out.
 */
export async function claimUnsettledCaptures(sql: Sql, o: ClaimWindow): Promise<UnsettledCapture[]> {
  const rows = await sql.query<{ order_id: string; order_checks: number; age_ms: number }>(
    `UPDATE payments p SET order_checks = p.order_checks + 1, order_next_check_at = now() + ${ms('$3')}
      WHERE p.order_id IN (
        SELECT order_id FROM payments
         WHERE status = 'captured' AND NOT cancel_requested AND order_status IS NULL
           AND created_at < now() - ${ms('$1')}
           AND (order_next_check_at IS NULL OR order_next_check_at <= now())
         ORDER BY created_at LIMIT $2 FOR UPDATE${o.skipLocked ? ' SKIP LOCKED' : ''})
        AND p.status = 'captured'
      RETURNING p.order_id, p.order_checks, (extract(epoch FROM now() - p.created_at) * 1000)::float8 AS age_ms`,
    [o.olderThanMs, o.limit, o.leaseMs],
  );
  return rows.map((r) => ({ orderId: r.order_id, checks: r.order_checks, ageMs: Math.round(r.age_ms) }));
}

/** order-service says the order was cancelled: the capture is owed back. False when already handled. */
export async function markRefundOwed(sql: Sql, orderId: string): Promise<boolean> {
  const rows = await sql.query(
    `UPDATE payments SET cancel_requested = true, order_status = 'cancelled', updated_at = now()
      WHERE order_id = $1 AND status = 'captured' AND NOT cancel_requested RETURNING 1`,
    [orderId],
  );
  return rows.length === 1;
}

export async function markOrderConfirmed(sql: Sql, orderId: string): Promise<void> {
  await sql.query(`UPDATE payments SET order_status = 'confirmed' WHERE order_id = $1`, [orderId]);
}

export async function scheduleOrderCheck(sql: Sql, orderId: string, delayMs: number): Promise<void> {
  await sql.query(`UPDATE payments SET order_next_check_at = now() + ${ms('$2')} WHERE order_id = $1`, [orderId, delayMs]);
}
