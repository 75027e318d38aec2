/** Read-only queries for the ops console (services/console): lookup by correlation id, aggregates. */
import type { OrderStats, Sql } from '@orderflow/kit';
import { toView, type OrderView } from './repository.js';

type OrderRow = Parameters<typeof toView>[0];

/** Orders carrying one correlation id (the console's lookup), newest first. */
export async function findByCorrelation(sql: Sql, correlationId: string, limit = 50): Promise<OrderView[]> {
  const rows = await sql.query<OrderRow>(`SELECT * FROM orders WHERE correlation_id = $1 ORDER BY created_at DESC LIMIT $2`, [
    correlationId,
    limit,
  ]);
  return rows.map(toView);
}

/**
 * Read-only aggregates for the ops console. A final order's updated_at is the time of its final
 * transition (nothing updates it afterwards), so it dates the confirmed / cancelled buckets.
 */
export async function orderStats(sql: Sql, windowMinutes: number, now = new Date()): Promise<OrderStats> {
  const toMap = (rows: Array<{ k: string | null; n: number }>) => Object.fromEntries(rows.map((r) => [r.k ?? 'none', Number(r.n)]));
  const since = new Date(Math.floor(now.getTime() / 60_000) * 60_000 - (windowMinutes - 1) * 60_000);
  const byStatus = toMap(await sql.query(`SELECT status AS k, count(*)::int AS n FROM orders GROUP BY status`));
  const windowByStatus = toMap(
    await sql.query(`SELECT status AS k, count(*)::int AS n FROM orders WHERE created_at >= $1 GROUP BY status`, [since.toISOString()]),
  );
  const cancelReasons = toMap(
    await sql.query(`SELECT reason AS k, count(*)::int AS n FROM orders WHERE status = 'cancelled' GROUP BY reason`),
  );
  const buckets = await sql.query<{ kind: string; minute: Date | string; n: number }>(
    `SELECT 'created' AS kind, date_trunc('minute', created_at) AS minute, count(*)::int AS n FROM orders WHERE created_at >= $1 GROUP BY 2
     UNION ALL
     SELECT status AS kind, date_trunc('minute', updated_at) AS minute, count(*)::int AS n FROM orders
      WHERE status IN ('confirmed', 'cancelled') AND updated_at >= $1 GROUP BY 1, 2`,
    [since.toISOString()],
  );
  const series = Array.from({ length: windowMinutes }, (_, i) => ({
    at: new Date(since.getTime() + i * 60_000).toISOString(),
    created: 0,
    confirmed: 0,
    cancelled: 0,
  }));
  for (const b of buckets) {
    const i = Math.round((new Date(b.minute).getTime() - since.getTime()) / 60_000);
    const slot = series[i];
    if (slot && (b.kind === 'created' || b.kind === 'confirmed' || b.kind === 'cancelled')) slot[b.kind] += Number(b.n);
  }
  return { windowMinutes, byStatus, windowByStatus, cancelReasons, series };
}
