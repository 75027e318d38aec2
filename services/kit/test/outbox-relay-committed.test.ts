/**
 * The relay's direct path: committed(events) publishes a local commit's events from memory, with
 * no claim transaction, and deletes their rows later, many in one statement. A replica's poll
 * leaves those young rows alone; a publish that fails falls back to the claim and its backoff; a
 * relay that dies before the delete leaves rows that the next one republishes under the same
 * Nats-Msg-Id, which JetStream drops.
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
  t = await startTestBed({ label: 'direct' });
  ({ namespace: ns, log, db, nc, nats } = t);
});
afterAll(() => t?.stop());

/** A stream of its own per test: its message count is what reached JetStream, duplicates dropped. */
async function stream(part: string): Promise<() => Promise<number>> {
  const jsm = await jetstreamManager(nc);
  const name = `${ns.toUpperCase()}_${part.toUpperCase()}`;
  await jsm.streams.add({ name, subjects: [`${ns}.${part}.>`] });
  return async () => (await jsm.streams.info(name)).state.messages;
}

function event(subject: string): OutgoingEvent {
  const id = randomUUID();
  return { id, type: 'orders.created', version: 'v1', subject, headers: {}, payload: JSON.stringify({ id }) };
}

/** Every publish that reaches the server on `subject` (duplicates too), payload ids in arrival order. */
function publishes(subject: string): { ids: string[]; stop: () => void } {
  const ids: string[] = [];
  const sub = nc.subscribe(subject, { callback: (_, m) => void ids.push((JSON.parse(m.string()) as { id: string }).id) });
  return { ids, stop: () => sub.unsubscribe() };
}

/**
 * The database, with its claim transactions (once finished: a claim under way when a commit lands
 * may take that commit's rows too, which JetStream would then drop as duplicates) and outbox
 * deletes counted.
 */
function counted(): { db: Db; claims: () => number; deletes: () => number } {
  let claims = 0;
  let deletes = 0;
  return {
    db: {
      ...db,
      txFrom: (first, fn) => db.txFrom(first, fn).finally(() => claims++),
      query: (text, params) => {
        if (/^DELETE FROM outbox WHERE event_id/.test(text)) deletes++;
        return db.query(text, params);
      },
    },
    claims: () => claims,
    deletes: () => deletes,
  };
}

const outboxIds = async () => (await db.query<{ event_id: string }>(`SELECT event_id FROM outbox`)).map((r) => r.event_id);

test('committed events go out in order with no claim, their rows are deleted together, a replica publishes none of them', async () => {
  const messages = await stream('direct');
  const seen = publishes(`${ns}.direct.>`);
  await nc.flush();
  const mine = counted();
  const relay = new OutboxRelay({ db: mine.db, nats, log, deleteAfterMs: 1000 });
  // Another replica on the same outbox, polling hard: only rows older than its orphan age are its own to claim.
  const theirs = counted();
  const replica = new OutboxRelay({ db: theirs.db, nats, log, pollMs: 10, orphanAfterMs: 30_000 });
  relay.start();
  replica.start();
  try {
    await waitFor('both start-up claims', () => mine.claims() === 1 && theirs.claims() === 1);
    const events = Array.from({ length: 60 }, (_, i) => event(`${ns}.direct.${i}`));
    const parts = Array.from({ length: 20 }, (_, i) => events.slice(i * 3, i * 3 + 3));
    // Twenty commits side by side; each hands its events over as it commits.
    const handedOver: OutgoingEvent[] = [];
    await Promise.all(
      parts.map(async (part) => {
        await db.tx((sql) => enqueue(sql, part));
        handedOver.push(...part);
        relay.committed(part);
      }),
    );
    await waitFor('every event in the stream', async () => (await messages()) === events.length);
    await waitFor('the outbox empty', async () => (await outboxIds()).length === 0);
    await nc.flush();
    // Once each (the replica claimed none), in the order handed over, and no claim transaction for them.
    expect(seen.ids).toEqual(handedOver.map((e) => e.id));
    expect(mine.claims()).toBe(1);
    expect(theirs.claims()).toBe(1);
    // Deleted in a few statements, not one per commit.
    expect(mine.deletes()).toBeGreaterThan(0);
    expect(mine.deletes()).toBeLessThan(events.length / 3);
  } finally {
    await relay.stop();
    await replica.stop();
    seen.stop();
  }
});

test('a committed event whose publish fails is retried by the claim with backoff, then published once', async () => {
  const mine = counted();
  const relay = new OutboxRelay({ db: mine.db, nats, log, publishTimeoutMs: 2000, retry: { initialMs: 20, maxMs: 100 } });
  relay.start();
  try {
    await waitFor('the start-up claim', () => mine.claims() === 1);
    // No stream takes the subject yet: JetStream has no responder, the publish fails.
    const e = event(`${ns}.late.1`);
    await db.tx((sql) => enqueue(sql, [e]));
    relay.committed([e]);
    await waitFor('the row retried by the claim, backing off', () => relay.retrying === 1 && mine.claims() >= 3);
    expect(await outboxIds()).toEqual([e.id]);
    const messages = await stream('late');
    await waitFor('the event in the stream', async () => (await messages()) === 1);
    await waitFor('the outbox empty', async () => (await outboxIds()).length === 0);
    expect(relay.retrying).toBe(0);
  } finally {
    await relay.stop();
  }
});

test('a relay that dies before deleting leaves rows the next relay republishes with the same id: one message each', async () => {
  const messages = await stream('crash');
  // The delete never reaches the database, as if the process died after its publishes.
  let claimed = false;
  const dying: Db = {
    ...db,
    txFrom: (first, fn) => db.txFrom(first, fn).finally(() => (claimed = true)),
    query: (text, params) => (/^DELETE FROM outbox/.test(text) ? Promise.reject(new Error('process gone')) : db.query(text, params)),
  };
  const first = new OutboxRelay({ db: dying, nats, log, deleteAfterMs: 10, retry: { initialMs: 10, maxMs: 20 } });
  first.start();
  await waitFor('the start-up claim', () => claimed);
  const events = [event(`${ns}.crash.1`), event(`${ns}.crash.2`)];
  await db.tx((sql) => enqueue(sql, events));
  first.committed(events);
  await waitFor('both published', async () => (await messages()) === 2);
  await first.stop();
  expect((await outboxIds()).sort()).toEqual(events.map((e) => e.id).sort());

  const seen = publishes(`${ns}.crash.>`);
  await nc.flush();
  const next = new OutboxRelay({ db, nats, log });
  next.start();
  try {
    await waitFor('the orphans claimed and republished', async () => (await outboxIds()).length === 0 && seen.ids.length === 2);
    expect(seen.ids).toEqual(events.map((e) => e.id));
    expect(await messages()).toBe(2);
  } finally {
    await next.stop();
    seen.stop();
  }
});
