import type { Migration } from '@orderflow/kit';

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 'order-001-orders',
    sql: `
      CREATE TABLE orders (
        id uuid PRIMARY KEY,
        customer_id text NOT NULL,
        currency text NOT NULL,
        items jsonb NOT NULL,
        status text NOT NULL,
        reason text,
        total numeric,
        correlation_id text NOT NULL,
        history jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      -- The saga timeout sweeps only open orders.
      CREATE INDEX orders_open_idx ON orders (created_at) WHERE status IN ('pending', 'reserved', 'paid');
      CREATE INDEX orders_correlation_idx ON orders (correlation_id);
      CREATE TABLE idempotency_keys (
        key text PRIMARY KEY,
        request_hash text NOT NULL,
        order_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );`,
  },
  {
    // 'paid' is a step in an order's history, never a stored status (payment confirms at once):
    // the open-order index covers what the saga timeout sweeps, nothing more.
    id: 'order-002-open-index',
    sql: `
      DROP INDEX orders_open_idx;
      CREATE INDEX orders_open_idx ON orders (created_at) WHERE status IN ('pending', 'reserved');`,
  },
];
