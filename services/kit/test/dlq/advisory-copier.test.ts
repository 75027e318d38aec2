/** Dead letters end to end against the real nats-server: advisory copier + replay/discard. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  applyTopology,
  createAdvisoryCopier,
  deadLetterLookup,
  discardDeadLetter,
  listDeadLetters,
  Names,
  problems,
  publishDeadLetter,
  replayAllDeadLetters,
  replayDeadLetter,
  showDeadLetter,
  type AdvisoryCopier,
} from '@orderflow/kit';
import { platformTopology } from '../../../../test/support/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';

const ns = testNamespace('dlq');
const names = new Names(ns);
const ORDERS = names.stream('ORDERS');
const DLQ = names.stream('DLQ');
const topology = platformTopology({ namespace: ns, maxDeliver: 3, backoff: ['1s'] });
const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let copier: AdvisoryCopier;
const deliveries = new Map<string, number>();
const terminate = new Set<string>();
const termOnly = new Set<string>();
let stopConsumer: () => void = () => undefined;

beforeAll(async () => {
  nc = await testNats();
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  expect(problems(await applyTopology(jsm, topology))).toEqual([]);
  copier = createAdvisoryCopier({ nc, js, jsm, lookup: deadLetterLookup(topology.consumers), log, queue: `copier-${ns}` });
  copier.start();
  // The "service": a handler that always fails. It naks, except for ids marked for term().
  const consumer = await js.consumers.get(ORDERS, 'inventory-orders');
  const messages = await consumer.consume({ max_messages: 10 });
  stopConsumer = () => void messages.stop();
  void (async () => {
    for await (const m of messages) await handle(m);
  })();
});

async function handle(m: JsMsg): Promise<void> {
  const id = m.headers?.get('Nats-Msg-Id') ?? '';
  deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
  if (termOnly.has(id)) {
    m.term();
    return;
  }
  if (terminate.has(id)) {
    // What the consumer runtime does: copy first (and wait for the ack), then term().
    await publishDeadLetter(js, {
      dlqSubject: names.dlqSubject(ORDERS, 'inventory-orders'),
      stream: ORDERS,
      consumer: 'inventory-orders',
      streamSeq: m.seq,
      deliveries: m.info.deliveryCount,
      originalSubject: m.subject,
      reason: 'poison: schema',
      data: m.data,
      headers: m.headers,
    });
    // No reason: nats-server 2.9 does not recognise "+TERM <reason>" as a term (checked on
    // 2.9.10: no MSG_TERMINATED advisory, the message is redelivered after ack wait).
    m.term();
    return;
  }
  m.nak();
}

afterAll(async () => {
  stopConsumer();
  await copier.stop();
  await copier.stop(); // idempotent
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

async function publishOrder(id: string, body: object): Promise<number> {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', id);
  h.set('X-Correlation-ID', `corr-${id}`);
  h.set('Event-Type', 'orders.created');
  const ack = await js.publish(names.subject('orders.created'), JSON.stringify(body), { headers: h, msgID: id });
  return ack.seq;
}

describe('advisory copier', () => {
  it('a message nak-ed maxDeliver (3) times lands in the DLQ with headers and reason', async () => {
    const seq = await publishOrder('evt-1', { orderId: 'o-1' });
    const loc = { jsm, dlqStream: DLQ };
    const [entry] = await waitFor('dead letter', async () => {
      const l = await listDeadLetters(loc, { stream: ORDERS });
      return l.length > 0 ? l : undefined;
    });
    expect(deliveries.get('evt-1')).toBe(3);
    expect(entry).toMatchObject({
      dlqSubject: names.dlqSubject(ORDERS, 'inventory-orders'),
      reason: 'max_deliveries',
      stream: ORDERS,
      consumer: 'inventory-orders',
      streamSeq: seq,
      deliveries: 3,
      originalSubject: names.subject('orders.created'),
      originalMsgId: 'evt-1',
    });
    expect(entry!.headers['X-Correlation-ID']).toEqual(['corr-evt-1']);
    expect(entry!.headers['Event-Type']).toEqual(['orders.created']);
    expect(JSON.parse(new TextDecoder().decode(entry!.data))).toEqual({ orderId: 'o-1' });
    // No fourth delivery after the DLQ copy.
    await new Promise((r) => setTimeout(r, 300));
    expect(deliveries.get('evt-1')).toBe(3);
    expect(copier.stats().copied).toBe(1);
  });

  it('dlq replay republishes with a new msg id and removes the entry; the message is redelivered', async () => {
    const loc = { jsm, dlqStream: DLQ };
    const [entry] = await listDeadLetters(loc, { stream: ORDERS });
    const before = (await jsm.streams.info(ORDERS)).state.last_seq;
    const r = await replayDeadLetter(js, loc, entry!.seq);
    expect(r).toMatchObject({ ok: true, subject: names.subject('orders.created'), msgId: `replay:${DLQ}:${entry!.seq}` });
    expect(r.replayedSeq).toBe(before + 1);
    expect(await showDeadLetter(loc, entry!.seq)).toBeUndefined();
    const replayed = await jsm.streams.getMessage(ORDERS, { seq: r.replayedSeq! });
    expect(replayed?.header.get('Nats-Msg-Id')).toBe(`replay:${DLQ}:${entry!.seq}`);
    expect(replayed?.header.get('Replay-Of-Msg-Id')).toBe('evt-1');
    expect(replayed?.header.get('X-Correlation-ID')).toBe('corr-evt-1');
    expect(replayed?.header.get('Dlq-Reason')).toBeFalsy();
    // The always-failing handler sees it again: it dead-letters a second time, as a new entry.
    await waitFor('second dead letter', async () =>
      (await listDeadLetters(loc, { stream: ORDERS })).find((e) => e.streamSeq === r.replayedSeq),
    );
  });

  it('a failed replay publish leaves the entry in the DLQ', async () => {
    const loc = { jsm, dlqStream: DLQ };
    const [entry] = await listDeadLetters(loc, { stream: ORDERS });
    const r = await replayDeadLetter(js, loc, entry!.seq, { to: 'nobody.listens.here' });
    expect(r.ok).toBe(false);
    expect(r.error).toBeTruthy();
    expect(await showDeadLetter(loc, entry!.seq)).toMatchObject({ seq: entry!.seq });
  });

  it('terminated messages: the runtime copy and the advisory copy de-duplicate to one entry', async () => {
    terminate.add('evt-term');
    const seq = await publishOrder('evt-term', { orderId: 'o-t' });
    const loc = { jsm, dlqStream: DLQ };
    await waitFor('copier saw the termination', () => copier.stats().duplicates >= 1);
    const entries = (await listDeadLetters(loc)).filter((e) => e.streamSeq === seq);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ reason: 'poison: schema', deliveries: 1 });
  });

  it('a terminated message without a runtime copy is copied by the copier', async () => {
    termOnly.add('evt-term2');
    const seq = await publishOrder('evt-term2', { orderId: 'o-t2' });
    const e = await waitFor('terminated dead letter', async () =>
      (await listDeadLetters({ jsm, dlqStream: DLQ })).find((x) => x.streamSeq === seq),
    );
    expect(e).toMatchObject({ reason: 'terminated', deliveries: 1, originalMsgId: 'evt-term2' });
  });

  it('replay --all and discard', async () => {
    const loc = { jsm, dlqStream: DLQ };
    const all = await listDeadLetters(loc);
    expect(all.length).toBeGreaterThanOrEqual(2);
    const victim = all[0]!;
    expect(await discardDeadLetter(loc, victim.seq)).toBe(true);
    expect(await discardDeadLetter(loc, victim.seq)).toBe(false);
    stopConsumer(); // so replayed messages are not dead-lettered again while we count
    const to = names.subject('orders.replayed');
    const results = await replayAllDeadLetters(js, loc, { stream: ORDERS }, { to });
    expect(results.length).toBe(all.length - 1);
    expect(results.every((r) => r.ok && r.subject === to)).toBe(true);
    expect(await listDeadLetters(loc, { stream: ORDERS })).toEqual([]);
  });
});
