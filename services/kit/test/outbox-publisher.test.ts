/**
 * The relay's acked publisher: a publish resolves only when a stream has stored the message (or
 * already had its Nats-Msg-Id), and fails for every other answer or for none.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import { AckedPublisher } from '../src/outbox/publisher.js';
import { removeTestNamespace, testNamespace, testNats } from '@orderflow/kit/testing';

let nc: NatsConnection;
const ns = testNamespace('pub');
const stream = `${ns.toUpperCase()}_EVENTS`;
const data = new TextEncoder().encode('{}');

beforeAll(async () => {
  nc = await testNats();
  await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${ns}.events.>`] });
});
afterAll(() => removeTestNamespace(nc, ns));

function withId(id: string, extra: Record<string, string> = {}) {
  const h = headers();
  h.set('Nats-Msg-Id', id);
  for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return h;
}

test('stored and duplicate publishes resolve; the stream holds each message id once, in publish order', async () => {
  const p = new AckedPublisher(nc, 5000);
  try {
    await Promise.all(['a', 'b', 'c', 'a'].map((id) => p.publish(`${ns}.events.x`, data, withId(`order-${id}`))));
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(stream)).state.messages).toBe(3);
    const stored = await Promise.all([1, 2, 3].map((seq) => jsm.streams.getMessage(stream, { seq })));
    expect(stored.map((m) => m?.header.get('Nats-Msg-Id'))).toEqual(['order-a', 'order-b', 'order-c']);
  } finally {
    p.close();
  }
});

test('no stream on the subject, a refused publish and a missing ack each reject; close rejects what is in flight', async () => {
  const p = new AckedPublisher(nc, 300);
  try {
    await expect(p.publish(`${ns}.nowhere.x`, data, withId('n1'))).rejects.toThrow(/no stream takes/);
    // JetStream answers with an error: the expected last sequence does not match.
    await expect(p.publish(`${ns}.events.y`, data, withId('n2', { 'Nats-Expected-Last-Sequence': '999' }))).rejects.toThrow(
      /JetStream refused the publish/,
    );
    // A core subscriber that never answers: a responder, so no 503, and no ack either.
    const silent = nc.subscribe(`${ns}.silent.>`);
    try {
      await expect(p.publish(`${ns}.silent.x`, data, withId('n3'))).rejects.toThrow(/not acknowledged within 300 ms/);
      const inFlight = p.publish(`${ns}.silent.y`, data, withId('n4'));
      p.close();
      await expect(inFlight).rejects.toThrow(/not acknowledged: the publisher was closed/);
      expect(p.usable).toBe(false);
      await expect(p.publish(`${ns}.events.z`, data, withId('n5'))).rejects.toThrow(/publisher is closed/);
    } finally {
      silent.unsubscribe();
    }
  } finally {
    p.close();
  }
});
