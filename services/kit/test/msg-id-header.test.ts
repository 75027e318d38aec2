import { afterAll, beforeAll, expect, test } from 'vitest';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { publishDeadLetter } from '@orderflow/kit';
import { testNamespace, testNats } from '@orderflow/kit/testing';

// nats-server 2.9 finds Nats-Msg-Id by the first occurrence of that text in the header block; a
// header value mentioning it ahead of the real header turns de-duplication off for the message.
const ns = testNamespace();
const stream = `${ns.toUpperCase()}_DLQ`;
let nc: NatsConnection;

beforeAll(async () => {
  nc = await testNats();
  await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${ns}.dlq.>`], duplicate_window: 120_000_000_000 });
});
afterAll(async () => {
  await (await jetstreamManager(nc)).streams.delete(stream);
  await nc.close();
});

test('a dead letter whose reason and headers mention Nats-Msg-Id still de-duplicates', async () => {
  const js = jetstream(nc);
  const original = headers();
  original.set('X-Correlation-ID', 'Nats-Msg-Id');
  const dl = {
    dlqSubject: `${ns}.dlq.S.c`,
    stream: 'S',
    consumer: 'c',
    streamSeq: 7,
    deliveries: 1,
    originalSubject: `${ns}.orders.created`,
    data: new TextEncoder().encode('{}'),
    headers: original,
  };
  const first = await publishDeadLetter(js, { ...dl, reason: 'missing Nats-Msg-Id header on orders.created' });
  const second = await publishDeadLetter(js, { ...dl, reason: 'terminated' });
  expect(first.duplicate).toBe(false);
  expect(second).toEqual({ seq: first.seq, duplicate: true });
});
