import type { Sql } from '@orderflow/kit';

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
}

export function toView(r: PaymentRow): PaymentView {
  return {
    orderId: r.order_id,
    status: r.status,
    amount: r.amount === null ? null : Number(r.amount),
    ...(r.currency ? { currency: r.currency } : {}),
    attempts: r.attempts,
    ...(r.charge_id ? { chargeId: r.charge_id } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

export async function getPayment(sql: Sql, orderId: string, lock = false): Promise<PaymentRow | undefined> {
  const rows = await sql.query<PaymentRow>(`SELECT * FROM payments WHERE order_id = $1${lock ? ' FOR UPDATE' : ''}`, [orderId]);
  return rows[0];
}

/** Claims the order for charging; false when a row already exists (a duplicate or a tombstone). */
export async function insertCharging(sql: Sql, p: { orderId: string; amount: number; currency: string; correlationId: string }): Promise<boolean> {
  const rows = await sql.query(
    `INSERT INTO payments (order_id, status, amount, currency, correlation_id) VALUES ($1, 'charging', $2, $3, $4)
     ON CONFLICT (order_id) DO NOTHING RETURNING 1`,
    [p.orderId, p.amount, p.currency, p.correlationId],
  );
  return rows.length === 1;
}

/** Rows the recovery sweep must finish: charges left `charging` (a crash after the ack), refunds owed, charges in doubt. */
export async function rowsNeedingWork(sql: Sql, olderThanMs: number, limit: number): Promise<PaymentRow[]> {
  return sql.query<PaymentRow>(
    `SELECT * FROM payments
     WHERE (status = 'charging' OR (status = 'captured' AND cancel_requested) OR in_doubt)
       AND updated_at < now() - make_interval(secs => $1::double precision / 1000)
     ORDER BY updated_at LIMIT $2`,
    [olderThanMs, limit],
  );
}
