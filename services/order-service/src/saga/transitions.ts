/**
 * The order saga as a pure state machine: given the order's status and a saga event, what the
 * new status is, what history to record and what to publish. Events may arrive out of order
 * (payments.completed before inventory.reserved); transitions are written for that.
 */
export type OrderStatus = 'pending' | 'reserved' | 'paid' | 'confirmed' | 'cancelled';

export type SagaInput =
  | { kind: 'reserved'; amount: number }
  | { kind: 'rejected'; reason: string }
  | { kind: 'paid' }
  | { kind: 'payment_failed'; reason: string }
  | { kind: 'timeout' };

export interface Transition {
  status: OrderStatus;
  steps: Array<{ status: OrderStatus; reason?: string }>;
  emit?: 'orders.confirmed' | 'orders.cancelled';
  reason?: string;
  total?: number;
}

export const FINAL: ReadonlySet<OrderStatus> = new Set(['confirmed', 'cancelled']);

export function transition(status: OrderStatus, input: SagaInput): Transition {
  const stay: Transition = { status, steps: [] };
  const cancel = (reason: string): Transition =>
    FINAL.has(status) ? stay : { status: 'cancelled', steps: [{ status: 'cancelled', reason }], emit: 'orders.cancelled', reason };
  switch (input.kind) {
    case 'reserved':
      if (status === 'pending') return { status: 'reserved', steps: [{ status: 'reserved' }], total: input.amount };
      return { ...stay, total: input.amount };
    case 'rejected':
      return cancel(input.reason);
    case 'payment_failed':
      return cancel(input.reason);
    case 'timeout':
      return status === 'pending' || status === 'reserved' ? cancel('timeout') : stay;
    case 'paid':
      if (status === 'pending' || status === 'reserved') {
        // Payment is the last step: paid and confirmed commit together.
        return { status: 'confirmed', steps: [{ status: 'paid' }, { status: 'confirmed' }], emit: 'orders.confirmed' };
      }
      return stay;
  }
}
