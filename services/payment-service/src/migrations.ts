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
  {
    id: 'payment-002-in-doubt-and-order-checks',
    sql: `
      -- A charge in doubt is re-checked at the gateway with a growing delay until a capture is found
      -- (and refunded) or the horizon passes (gave up: surfaced, in_doubt stays true).
      -- order_*: a capture whose order outcome never reached us is looked up at order-service.
      ALTER TABLE payments
        ADD COLUMN in_doubt_since timestamptz,
        ADD COLUMN in_doubt_checks int NOT NULL DEFAULT 0,
        ADD COLUMN in_doubt_next_at timestamptz,
        ADD COLUMN in_doubt_gave_up_at timestamptz,
        ADD COLUMN order_status text CHECK (order_status IN ('confirmed', 'cancelled')),
        ADD COLUMN order_checks int NOT NULL DEFAULT 0,
        ADD COLUMN order_next_check_at timestamptz;
      UPDATE payments SET in_doubt_since = updated_at WHERE in_doubt;
      DROP INDEX payments_open_idx;
      CREATE INDEX payments_open_idx ON payments (updated_at) WHERE status = 'charging' OR (status = 'captured' AND cancel_requested);
      CREATE INDEX payments_in_doubt_idx ON payments (in_doubt_next_at) WHERE in_doubt;
      CREATE INDEX payments_unsettled_idx ON payments (created_at)
        WHERE status = 'captured' AND NOT cancel_requested AND order_status IS NULL;`,
  },
  {
    id: 'payment-003-in-doubt-last-sent',
    sql: `
      -- When the last charge attempt of a charge in doubt was sent (our clock). The gateway never
      -- captures a request later than its maximum processing time after it was sent, so a lookup
      -- after this + that bound which finds nothing settles the doubt: never captured.
      -- NULL on rows from before: in_doubt_since (written after the last send) stands in.
      ALTER TABLE payments ADD COLUMN in_doubt_last_sent_at timestamptz;`,
  },
];
