import type { LineItem } from './plan.js';

/**
 * The reservation shapes the repository returns and the batch lock state (batch-lock.ts) keeps a
 * copy of: here, so that neither module has to import the other for them.
 */

export type ReservationStatus = 'held' | 'committed' | 'released' | 'rejected' | 'cancelled';

export interface ReservationView {
  orderId: string;
  status: ReservationStatus;
  items: Array<LineItem & { unitPrice?: number }>;
  amount?: number;
  currency?: string;
  reason?: string;
  correlationId: string;
}
