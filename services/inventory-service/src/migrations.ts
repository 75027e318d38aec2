import type { Migration } from '@orderflow/kit';

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 'inventory-001-stock',
    sql: `
      CREATE TABLE products (
        product_id text PRIMARY KEY,
        on_hand integer NOT NULL,
        reserved integer NOT NULL DEFAULT 0,
        -- Units committed to confirmed orders: on_hand + sold stays equal to the stock last set.
        sold integer NOT NULL DEFAULT 0,
        price numeric,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT products_on_hand_nonneg CHECK (on_hand >= 0),
        CONSTRAINT products_reserved_nonneg CHECK (reserved >= 0),
        CONSTRAINT products_sold_nonneg CHECK (sold >= 0),
        CONSTRAINT products_available_nonneg CHECK (on_hand - reserved >= 0),
        CONSTRAINT products_price_nonneg CHECK (price IS NULL OR price >= 0)
      );
      -- One row per order id, whatever happened to it. 'cancelled' is a tombstone: the order was
      -- cancelled before its orders.created arrived, so that late event must reserve nothing.
      CREATE TABLE reservations (
        order_id uuid PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('held', 'committed', 'released', 'rejected', 'cancelled')),
        items jsonb NOT NULL DEFAULT '[]'::jsonb,
        amount numeric,
        currency text,
        reason text,
        correlation_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX reservations_held_idx ON reservations (created_at) WHERE status = 'held';`,
  },
  {
    id: 'inventory-002-reservation-sweep',
    sql: `
      -- The sweeper asks order-service about a hold that outlived the saga; when the answer is not
      -- final yet it asks again later (sweep_next_at), with a growing delay (sweep_checks).
      ALTER TABLE reservations
        ADD COLUMN sweep_checks integer NOT NULL DEFAULT 0,
        ADD COLUMN sweep_next_at timestamptz;`,
  },
];
