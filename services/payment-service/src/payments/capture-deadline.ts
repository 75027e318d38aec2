import type { PaymentRow } from './repository.js';

/**
 * The time (epoch ms) after which the gateway can no longer capture this charge: the last attempt's
 * send time plus its maximum processing time. Rows from before that column use in_doubt_since,
 * written after the last send, so the deadline is only ever later than the true one.
 */
export function captureDeadline(row: Pick<PaymentRow, 'in_doubt_last_sent_at' | 'in_doubt_since'>, maxProcessingMs: number): number {
  const sent = row.in_doubt_last_sent_at ?? row.in_doubt_since;
  // Neither (cannot happen for a row in doubt): no deadline, never resolved by it.
  return sent === null ? Number.POSITIVE_INFINITY : new Date(sent).getTime() + maxProcessingMs;
}
