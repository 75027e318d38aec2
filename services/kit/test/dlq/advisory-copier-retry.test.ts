/**
 * Finding 7 (copier half): advisories are core NATS messages that nobody sends again, so a failed
 * lookup of the original (getMessage) must be retried, not logged and dropped — the old copier
 * lost the dead letter. Here the first lookups fail the way a JetStream API call fails while the
 * stream leader moves (a request timeout); the dead letter must still arrive.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import pino from 'pino';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  applyTopology,
  createAdvisoryCopier,
  deadLetterLookup,
  listDeadLetters,
  Names,
  problems,
  type AdvisoryCopier,
} from '@orderflow/kit';
import { platformTopology } from '../../../../test/support/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';

const ns = testNamespace('dlqretry');
const names = new Names(ns);
const ORDERS = names.stream('ORDERS');
const DLQ = names.stream('DLQ');
const topology = platformTopology({ namespace: ns, maxDeliver: 2, backoff: ['1s'] });
const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let copier: AdvisoryCopier | undefined;

beforeAll(async () => {
  nc = await testNats();
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  expect(problems(await applyTopology(jsm, topology))).toEqual([]);
});

afterAll(async () => {
  await copier?.stop();
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

/** The real manager, whose first `failures` message lookups time out. */
function flakyLookups(real: JetStreamManager, failures: number): { jsm: JetStreamManager; attempts: () => number } {
  let attempts = 0;
  const streams = new Proxy(real.streams, {
    get(target, prop, receiver) {
      if (prop === 'getMessage') {
        return async (...args: Parameters<typeof target.getMessage>) => {
          if (attempts++ < failures) throw Object.assign(new Error('JetStream API request timed out'), { name: 'TimeoutError' });
          return target.getMessage(...args);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    jsm: new Proxy(real, { get: (target, prop, receiver) => (prop === 'streams' ? streams : Reflect.get(target, prop, receiver)) }),
    attempts: () => attempts,
  };
}

test('a failed lookup of the original is retried: the dead letter is not lost', async () => {
  const flaky = flakyLookups(jsm, 2);
  copier = createAdvisoryCopier({
    nc,
    js,
    jsm: flaky.jsm,
    lookup: deadLetterLookup(topology.consumers),
    log,
    queue: `copier-${ns}`,
    backoff: { initialMs: 50, maxMs: 200 },
  });
  copier.start();
  const h = natsHeaders();
  h.set('Nats-Msg-Id', `evt-${ns}`);
  const { seq } = await js.publish(names.subject('orders.created'), JSON.stringify({ orderId: 'o-1' }), { headers: h });
  // A "service" whose handler fails every time: after maxDeliver (2) naks the server gives up
  // (and says so when it would deliver again: a pull request must be waiting).
  const consumer = await js.consumers.get(ORDERS, 'inventory-orders');
  const advisory = nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${ORDERS}.inventory-orders`, { max: 1 });
  for (let n = 0; n < 2; n++) (await consumer.next({ expires: 5000 }))?.nak();
  const waiting = consumer.next({ expires: 1000 });
  for await (const _ of advisory) break;
  expect(await waiting).toBeNull();
  const entry = await waitFor('dead letter copied despite failed lookups', async () =>
    (await listDeadLetters({ jsm, dlqStream: DLQ })).find((e) => e.streamSeq === seq),
  );
  expect(entry).toMatchObject({ reason: 'max_deliveries', consumer: 'inventory-orders', deliveries: 2, originalMsgId: `evt-${ns}` });
  expect(flaky.attempts()).toBe(3);
  expect(copier.stats()).toMatchObject({ copied: 1, retried: 2, failed: 0 });
});
