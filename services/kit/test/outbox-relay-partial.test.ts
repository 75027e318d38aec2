import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createMetrics, enqueue, OutboxRelay, type Db, type Logger, type NatsManager, type OutgoingEvent } from '@orderflow/kit';
import { startTestBed, waitFor, type TestBed } from '@orderflow/kit/testing';

let t: TestBed;
let ns: string, log: Logger, db: Db, nc: NatsConnection, nats: NatsManager;

beforeAll(async () => {
  t = await startTestBed({ label: 'relay' });
  ({ namespace: ns, log, db, nc, nats } = t);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: `${ns.toUpperCase()}_GOOD`, subjects: [`${ns}.good.>`] });
});
afterAll(() => t?.stop());

function event(subject: string): OutgoingEvent {
  const id = randomUUID();
  return { id, type: 'orders.created', version: 'v1', subject, headers: {}, payload: JSON.stringify({ id }) };
}

/**
 * Every publish that reaches the server on the good subjects, duplicates included (JetStream drops
 * those, a core subscriber still sees them).
 */
function countPublishes(sub: Subscription): Map<string, number> {
  const seen = new Map<string, number>();
  void (async () => {
    for await (const m of sub) {
      const id = (JSON.parse(m.string()) as { id: string }).id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
  })();
  return seen;
}

test(
  'one publish failing in a batch: the others are published once and deleted; the failing row alone is ' + 'retried with backoff',
  async () => {
    const metrics = createMetrics('relay-partial-test');
    const failedAttempts = async (subject: string) =>
      (await metrics.failed.get()).values.find((v) => v.labels.subject === subject)?.value ?? 0;
    const sub = nc.subscribe(`${ns}.good.>`);
    const publishes = countPublishes(sub);
    await nc.flush();

    // No stream takes `<ns>.orphan.x` yet: its publish fails (no responders) every time.
    const bad = event(`${ns}.orphan.x`);
    const good = [event(`${ns}.good.1`), bad, event(`${ns}.good.2`), event(`${ns}.good.3`)].filter((e) => e !== bad);
    await db.tx((sql) => enqueue(sql, [good[0]!, bad, good[1]!, good[2]!]));

    const relay = new OutboxRelay({ db, nats, log, metrics, pollMs: 50, publishTimeoutMs: 2000, retry: { initialMs: 20, maxMs: 200 } });
    relay.start();
    try {
      await waitFor('the orphan row to have failed 4 times', async () => (await failedAttempts(bad.subject)) >= 4, 30_000);
      // What was published is gone from the outbox and went out exactly once.
      expect((await db.query<{ event_id: string }>(`SELECT event_id FROM outbox`)).map((r) => r.event_id)).toEqual([bad.id]);
      await nc.flush();
      expect(good.map((e) => publishes.get(e.id) ?? 0)).toEqual([1, 1, 1]);

      // A row written while the orphan keeps failing is not held behind it.
      const later = event(`${ns}.good.4`);
      await db.tx((sql) => enqueue(sql, [later]));
      relay.wake();
      await waitFor('the later row published', async () => publishes.get(later.id) === 1, 15_000);

      // Once a stream takes the subject, the retried row goes out and the outbox is empty.
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: `${ns.toUpperCase()}_ORPHAN`, subjects: [`${ns}.orphan.>`] });
      await waitFor(
        'the orphan row published',
        async () => (await jsm.streams.info(`${ns.toUpperCase()}_ORPHAN`)).state.messages === 1,
        15_000,
      );
      await waitFor('outbox empty', async () => (await db.query(`SELECT 1 FROM outbox`)).length === 0, 15_000);
      await nc.flush();
      expect([...good, later].map((e) => publishes.get(e.id) ?? 0)).toEqual([1, 1, 1, 1]);
    } finally {
      await relay.stop();
      sub.unsubscribe();
    }
  },
);
