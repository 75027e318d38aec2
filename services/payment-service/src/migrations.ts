import type { Migration } from '@orderflow/kit';

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 'payment-001-payments',
    sql: `
      CREATE TABLE payments (
        order_id uuid PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('charging', 'captured', 'declined', 'failed', 'cancelled', 'refunded')),
        -- NULL on a tombstone written by orders.cancelled before inventory.reserved told us the amount.
        amount numeric CHECK (amount >= 0),
        currency text,
        correlation_id text NOT NULL,
        charge_id text,
        attempts int NOT NULL DEFAULT 0,
        reason text,
        -- orders.cancelled arrived while charging or after capture: the capture must be refunded.
        cancel_requested boolean NOT NULL DEFAULT false,
        -- A failed charge whose request may still have reached the gateway: reconcile it later.
        in_doubt boolean NOT NULL DEFAULT false,
        -- The one payments.* answer to inventory.reserved has been queued in the outbox.
        answered boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      -- The recovery sweep looks only at rows that still need work.
      CREATE INDEX payments_open_idx ON payments (updated_at)
        WHERE status = 'charging' OR (status = 'captured' AND cancel_requested) OR in_doubt;`,
  },
];
