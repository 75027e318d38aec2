/**
 * Malformed and oversized NATS messages at every durable consumer of the platform (real NATS +
 * Postgres, services in-process). Every message must end up in the DLQ once per consumer whose
 * filter matches it, with a reason, without a retry storm; afterwards the consumers are alive:
 * nothing left unacknowledged and a real order still goes through the whole saga.
 */
import fc from 'fast-check';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Names } from '@orderflow/kit';
import { testNats, waitFor } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';
import { readAllMessages } from '../support/invariants.js';
import { platformTopology } from '../support/topology.js';

const SUBJECTS = [
  'orders.created',
  'orders.cancelled',
  'orders.confirmed',
  'inventory.reserved',
  'inventory.rejected',
  'inventory.released',
  'payments.completed',
  'payments.failed',
] as const;

interface Poison {
  subject: (typeof SUBJECTS)[number];
  payload: Uint8Array;
  headers: Array<[string, string]>;
  withMsgId: boolean;
}

const protoish = fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'call');
const enc = new TextEncoder();
const poison: fc.Arbitrary<Poison> = fc.record({
  subject: fc.constantFrom(...SUBJECTS),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.jsonValue().map((j) => enc.encode(JSON.stringify(j))),
    fc.string({ unit: 'grapheme', maxLength: 100 }).map((s) => enc.encode(s)),
    // Right shape, wrong values.
    fc
      .record({
        version: fc.constantFrom('v1', 'v2', 'v9', '__proto__'),
        orderId: fc.oneof(fc.uuid(), fc.string(), fc.integer()),
        correlationId: fc.string(),
        items: fc.jsonValue(),
      })
      .map((o) => enc.encode(JSON.stringify(o))),
    fc.constant(enc.encode('{"version":"v1","orderId":"00000000-0000-4000-8000-000000000000"'.padEnd(100, ' '))),
    // Oversized: close to the server's 1 MB max_payload.
    fc.constant(enc.encode(JSON.stringify({ version: 'v1', junk: 'x'.repeat(900 * 1024) }))),
  ),
  headers: fc.array(
    fc.tuple(
      fc.constantFrom('Event-Type', 'Event-Version', 'Event-Id', 'Event-Versions', 'X-Correlation-ID', 'traceparent'),
      fc.oneof(
        protoish,
        fc.constantFrom(...SUBJECTS, 'orders.nope', 'v1', 'v2', 'v1,v2', '', '00-zz-zz-01'),
        fc.stringMatching(/^[\x21-\x7e]{0,40}$/),
      ),
    ),
    { maxLength: 4 },
  ),
  withMsgId: fc.boolean(),
});

describe('malformed and oversized messages at every consumer', () => {
  const p = new Platform({ env: { SAGA_TIMEOUT_MS: '120000' }, logLevel: 'error' });
  const names = new Names(p.ns);
  const { consumers } = platformTopology({ namespace: p.ns });
  let nc: NatsConnection;
  beforeAll(async () => {
    await p.start();
    await p.setStock('poison-ok', 10, 1);
    nc = await testNats();
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await p.stop();
  });

  test('→ DLQ with a reason at each matching consumer; consumers alive afterwards', async () => {
    const samples = fc.sample(poison, { numRuns: Number(process.env.POISON_RUNS ?? 40), seed: Number(process.env.FUZZ_SEED ?? 7) });
    // Make sure the interesting corners are in whatever the seed gives.
    samples.push(
      {
        subject: 'orders.created',
        payload: enc.encode('{}'),
        headers: [
          ['Event-Type', 'orders.created'],
          ['Event-Version', 'constructor'],
        ],
        withMsgId: true,
      },
      { subject: 'payments.failed', payload: enc.encode('{}'), headers: [['Event-Type', '__proto__']], withMsgId: true },
      { subject: 'inventory.reserved', payload: enc.encode('not json'), headers: [], withMsgId: false },
    );
    const js = jetstream(nc);
    const expected = new Set<string>();
    for (const [i, s] of samples.entries()) {
      const h = natsHeaders();
      for (const [k, v] of s.headers) h.set(k, v);
      const stream = names.stream(s.subject.split('.')[0]!.toUpperCase());
      const ack = await js.publish(names.subject(s.subject), s.payload, {
        headers: h,
        ...(s.withMsgId ? { msgID: `poison-${p.ns}-${i}` } : {}),
      });
      for (const c of consumers) {
        const filter = names.eventType(c.filterSubject!);
        const matches = filter.endsWith('>') ? s.subject.startsWith(filter.slice(0, -1)) : filter === s.subject;
        if (c.streamName === stream && matches) expected.add(`${c.durableName}:${stream}:${ack.seq}`);
      }
    }
    const jsm = await jetstreamManager(nc);
    const dlqStream = names.stream('DLQ');
    const keyOf = (m: { headers: Record<string, string> }) =>
      `${m.headers['Dlq-Consumer']}:${m.headers['Dlq-Stream']}:${m.headers['Dlq-Stream-Seq']}`;
    let dlq: Awaited<ReturnType<typeof readAllMessages>> = [];
    await waitFor(
      `${expected.size} dead letters`,
      async () => {
        dlq = await readAllMessages(nc, dlqStream);
        return [...expected].every((k) => dlq.some((m) => keyOf(m) === k));
      },
      40_000,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; missing: ${[...expected].filter((k) => !dlq.some((m) => keyOf(m) === k)).join(', ')}`);
    });
    const counts = new Map<string, number>();
    for (const m of dlq) {
      expect(m.headers['Dlq-Reason'], `reason on ${m.subject}`).toBeTruthy();
      counts.set(keyOf(m), (counts.get(keyOf(m)) ?? 0) + 1);
    }
    // Exactly the expected dead letters, each once.
    expect([...counts.keys()].sort()).toEqual([...expected].sort());
    // Each once: the runtime's copy and the MSG_TERMINATED advisory copier's copy share one
    // Nats-Msg-Id, kept first in the header block (nats-server 2.9 reads the first occurrence of
    // the text; a Dlq-Reason mentioning "Nats-Msg-Id" ahead of it used to defeat de-duplication).
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    // Dead-lettered on the first delivery, not after a retry storm.
    expect(
      dlq
        .filter((m) => m.headers['Dlq-Deliveries'] !== '1')
        .map((m) => `${m.headers['Dlq-Consumer']} ${m.headers['Dlq-Deliveries']} ${m.headers['Dlq-Reason']}`),
    ).toEqual([]);

    // Alive: every durable has settled and a real order still completes.
    await waitFor(
      'consumers settled',
      async () => {
        for (const c of consumers) {
          const info = await jsm.consumers.info(c.streamName, c.durableName);
          if (info.num_ack_pending || info.num_pending) return false;
        }
        return true;
      },
      20_000,
      250,
    );
    const { status, orderId } = await p.placeOrder('after-poison', [{ productId: 'poison-ok', quantity: 1 }]);
    expect(status).toBe(202);
    const final = await p.waitFinal([orderId!], 30_000);
    expect(final.get(orderId!)?.status).toBe('confirmed');
  }, 90_000);
});
