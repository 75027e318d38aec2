import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { makeEvent, Names, type Db, type EventData, type EventType, type RunningService, type TxSql } from '@orderflow/kit';
import { readStream, waitFor } from '@orderflow/kit/testing';

export type Published = { id: string; type: EventType };

/** Publishes an event straight to its stream the way the outbox relay does (same headers, msg id = event id). */
export async function publish<T extends EventType>(nc: NatsConnection, names: Names, type: T, data: EventData<T>): Promise<Published> {
  const e = makeEvent(names, type, data);
  const h = natsHeaders();
  for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
  await jetstream(nc).publish(e.subject, e.payload, { msgID: e.id, headers: h });
  return { id: e.id, type };
}

/** Waits until the service's consumer has committed the handling of these events. */
export async function processed(svc: RunningService, events: readonly Published[], timeoutMs = 20_000): Promise<void> {
  const durable = (t: EventType) => (t === 'payments.failed' ? 'inventory-payments' : 'inventory-orders');
  await waitFor(
    `${events.length} event(s) processed`,
    async () => {
      const rows = await svc.ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM processed_events p JOIN unnest($1::text[], $2::text[]) AS e(consumer, id)
          ON p.consumer = e.consumer AND p.event_id = e.id`,
        [events.map((e) => durable(e.type)), events.map((e) => e.id)],
      );
      return rows[0]?.n === events.length;
    },
    timeoutMs,
  );
}

export type InventoryEvent = { type: string; data: { orderId: string; [k: string]: unknown } };

/** Every inventory.* event the service has published so far, once its outbox is empty. */
export async function inventoryEvents(svc: RunningService, nc: NatsConnection, names: Names): Promise<InventoryEvent[]> {
  await waitFor('outbox drained', async () => (await svc.ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`))[0]?.n === 0);
  const msgs = await readStream(nc, names.stream('INVENTORY'));
  return msgs.map((m) => ({ type: names.eventType(m.subject), data: m.json as InventoryEvent['data'] }));
}

export const now = () => new Date().toISOString();

/** Resolves once both parties have arrived. */
export function meeting(): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return async () => {
    if (++arrived === 2) open();
    await opened;
  };
}

/** Postgres detected a deadlock (40P01). */
export const deadlocked = (err: unknown) => (err as { code?: string } | undefined)?.code === '40P01';

/**
 * What the kit's consumer does with a batch: every event's handler in one transaction and, when
 * that fails, each event again in a transaction of its own. `handle(sql, i, inBatch)` handles the
 * i-th event; `afterFirst` runs in the batch transaction after its first event (a meeting, while
 * the first locks are held). Resolves to the batch transaction's error, if it failed.
 */
export async function batchThenOneByOne(
  db: Db,
  count: number,
  handle: (sql: TxSql, i: number, inBatch: boolean) => Promise<unknown>,
  hooks: { start?: (sql: TxSql) => Promise<void>; afterFirst?: (sql: TxSql) => Promise<void> } = {},
): Promise<unknown> {
  try {
    await db.tx(async (sql) => {
      await hooks.start?.(sql);
      for (let i = 0; i < count; i++) {
        await handle(sql, i, true);
        if (i === 0) await hooks.afterFirst?.(sql);
      }
    });
    return undefined;
  } catch (err) {
    for (let i = 0; i < count; i++) await db.tx((sql) => handle(sql, i, false));
    return err;
  }
}
