/**
 * runTransaction's idempotency record: which works of a batch run their handler. An id recorded
 * by an earlier transaction is a duplicate; an id twice in one batch runs once, the first time;
 * hostile ids arrive as they are. Postgres and PGlite alike.
 */
import { afterAll, expect, test } from 'vitest';
import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import pino from 'pino';
import { migrate, Names, OUTBOX_MIGRATIONS } from '@orderflow/kit';
import { dbBackends } from '@orderflow/kit/testing';
import { runTransaction } from '../../src/consumer/transaction.js';
import type { Work } from '../../src/consumer/work.js';

const { backends, close } = dbBackends('txdedup');
afterAll(close);

const names = new Names('txdedup');
const log = pino({ level: 'silent' });

/** A work for event `id` whose handler notes that it ran (the message itself is never touched). */
function work(id: string, ran: string[], label = id): Work {
  return {
    msg: {} as Work['msg'],
    span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
    ctx: ROOT_CONTEXT,
    correlationId: 'c',
    started: 0,
    deliveryCount: 1,
    event: { id } as Work['event'],
    handler: async () => void ran.push(label),
  };
}

test.each(backends)('%s: recorded ids and repeats within a batch are not handled again', async (_, open) => {
  const db = await open();
  await migrate(db, OUTBOX_MIGRATIONS);
  const o = { db, names, durable: `d-${Math.random().toString(36).slice(2)}`, log, deadlineMs: 10_000 };
  const ran: string[] = [];
  const before = await runTransaction(o, [work('b', ran), work(`it's "odd", {x}`, ran)]);
  expect(before.handled.size).toBe(2);
  const batch = [work('a', ran), work('b', ran), work('a', ran, 'a again'), work(`it's "odd", {x}`, ran), work('c', ran)];
  const { handled } = await runTransaction(o, batch);
  expect(ran).toEqual(['b', `it's "odd", {x}`, 'a', 'c']);
  expect([...handled]).toEqual([batch[0], batch[4]]);
  // Another durable keeps its own record.
  const other = await runTransaction({ ...o, durable: `${o.durable}-other` }, [work('a', ran)]);
  expect(other.handled.size).toBe(1);
});
