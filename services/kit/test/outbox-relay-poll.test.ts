/**
 * The relay's safety-net poll on Postgres: while the outbox is empty a poll is one plain read, no
 * claim transaction; a row written by another process (no wake(), no committed()) is still found by
 * the poll, once older than orphanAfterMs, and published.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { enqueue, OutboxRelay, type Db, type Logger, type NatsManager } from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';

let t: TestBed;
let ns: string, log: Logger, db: Db, nc: NatsConnection, nats: NatsManager;

beforeAll(async () => {
  t = await startTestBed({ label: 'relaypoll' });
  ({ namespace: ns, log, db, nc, nats } = t);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: `${ns.toUpperCase()}_POLL`, subjects: [`${ns}.poll.>`] });
});
afterAll(() => t?.stop());

test('an idle poll reads without a transaction; a row from another process is published by the poll', async () => {
  expect(db.kind).toBe('postgres');
  let claims = 0;
  let reads = 0;
  // The same database, counted: claims are transactions (txFrom), the poll's check a plain read.
  const counted: Db = {
    ...db,
    txFrom: (first, fn) => {
      claims++;
      return db.txFrom(first, fn);
    },
    query: (text, params) => {
      if (/SELECT EXISTS/.test(text)) reads++;
      return db.query(text, params);
    },
  };
  const relay = new OutboxRelay({ db: counted, nats, log, pollMs: 20, orphanAfterMs: 200 });
  const id = randomUUID();
  const got = new Promise<string>((resolve) => {
    nc.subscribe(`${ns}.poll.>`, { max: 1, callback: (_, m) => resolve(m.string()) });
  });
  await nc.flush();
  relay.start();
  try {
    // start() claims once; after that, polls of an empty outbox only read.
    await waitFor('ten idle polls', () => reads >= 10);
    expect(claims).toBe(1);
    // Another process's commit: nobody calls wake().
    await db.tx((sql) => enqueue(sql, [{ id, type: 'orders.created', version: 'v1', subject: `${ns}.poll.1`, headers: {}, payload: id }]));
    expect(await got).toBe(id);
    expect(claims).toBeGreaterThanOrEqual(2);
    await waitFor('outbox empty', async () => (await db.query('SELECT 1 FROM outbox')).length === 0);
  } finally {
    await relay.stop();
  }
});
