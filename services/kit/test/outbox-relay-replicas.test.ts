/**
 * Two relays (two replicas of a service) draining one outbox at once: the claim deletes what it
 * locks (SKIP LOCKED), so every row goes out exactly once — no duplicate publish for JetStream to
 * drop — and in id order within each relay's batches.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { enqueue, OutboxRelay, type Db, type Logger, type NatsManager, type OutgoingEvent } from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';

let t: TestBed;
let ns: string, log: Logger, db: Db, nc: NatsConnection, nats: NatsManager;

beforeAll(async () => {
  t = await startTestBed({ label: 'relays' });
  ({ namespace: ns, log, db, nc, nats } = t);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: `${ns.toUpperCase()}_MANY`, subjects: [`${ns}.many.>`] });
});
afterAll(() => t?.stop());

function event(i: number): OutgoingEvent {
  const id = randomUUID();
  return { id, type: 'orders.created', version: 'v1', subject: `${ns}.many.${i}`, headers: {}, payload: JSON.stringify({ id }) };
}

test('two relays on one outbox publish every row exactly once', async () => {
  const events = Array.from({ length: 300 }, (_, i) => event(i));
  const seen = new Map<string, number>();
  const sub = nc.subscribe(`${ns}.many.>`, {
    callback: (_, m) => {
      const id = (JSON.parse(m.string()) as { id: string }).id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    },
  });
  await nc.flush();
  for (let i = 0; i < events.length; i += 50) {
    const part = events.slice(i, i + 50);
    await db.tx((sql) => enqueue(sql, part));
  }
  const relays = [0, 1].map(() => new OutboxRelay({ db, nats, log, batchSize: 16, pollMs: 50 }));
  for (const r of relays) r.start();
  try {
    await waitFor('outbox empty', async () => (await db.query(`SELECT 1 FROM outbox`)).length === 0, 30_000);
    await nc.flush();
    await waitFor('every publish seen', () => seen.size === events.length, 10_000);
    expect(events.filter((e) => seen.get(e.id) !== 1).map((e) => [e.id, seen.get(e.id)])).toEqual([]);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(`${ns.toUpperCase()}_MANY`)).state.messages).toBe(events.length);
  } finally {
    for (const r of relays) await r.stop();
    sub.unsubscribe();
  }
});
