/**
 * What order-service's GET /orders/stats answers, and what the ops console reads and shows: one
 * declaration of the wire shape for both sides. Types only.
 */
export interface OrderStats {
  windowMinutes: number;
  /** Every order by its current status. */
  byStatus: Record<string, number>;
  /** Orders created within the window, by current status. */
  windowByStatus: Record<string, number>;
  /** Cancelled orders by reason (all time). */
  cancelReasons: Record<string, number>;
  /** Per minute, oldest first: orders created, and orders that reached confirmed / cancelled. */
  series: Array<{ at: string; created: number; confirmed: number; cancelled: number }>;
}
