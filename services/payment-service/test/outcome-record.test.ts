/**
 * Charge outcomes recorded as a group (one transaction for many charges): each row gets exactly
 * what recording it alone would give it, each recorded charge exactly its one payments.* event,
 * and a row no longer `charging` (answered by someone else) is left alone, in the group as alone.
 * On Postgres and on PGlite.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, expect, test } from 'vitest';
import { migrate, Names, OUTBOX_MIGRATIONS } from '@orderflow/kit';
import { dbBackends } from '@orderflow/kit/testing';
import { MIGRATIONS } from '../src/migrations.js';
import { insertCharging } from '../src/payments/repository.js';
import { recordOutcomes, type OutcomeToRecord } from '../src/payments/outcome-record.js';

const names = new Names(`t_${randomBytes(3).toString('hex')}`);

const { backends, close } = dbBackends('outcomes');
afterAll(close);

test.each(backends)('%s: a group records each charge as alone, with one event each', async (_, open) => {
  const db = await open();
  await migrate(db, [...OUTBOX_MIGRATIONS, ...MIGRATIONS]);
  const ids = Array.from({ length: 5 }, () => randomUUID());
  for (const [i, id] of ids.entries()) await insertCharging(db, { orderId: id, amount: 10 + i, currency: 'EUR', correlationId: `c-${i}` });
  // ids[1] was cancelled while charging; ids[4] was answered by someone else (a sweep) first.
  await db.query(`UPDATE payments SET cancel_requested = true WHERE order_id = $1`, [ids[1]]);
  await db.query(`UPDATE payments SET status = 'failed', reason = 'gateway_unavailable' WHERE order_id = $1`, [ids[4]]);
  const sentAt = new Date('2026-12-01T10:00:00Z');
  const items: OutcomeToRecord[] = [
    { orderId: ids[0]!, attempts: 1, outcome: { kind: 'captured', chargeId: 'ch_0' }, firstCheckMs: 500, trace: {} },
    { orderId: ids[1]!.toUpperCase(), attempts: 2, outcome: { kind: 'captured', chargeId: 'ch_1' }, firstCheckMs: 500, trace: {} },
    { orderId: ids[2]!, attempts: 1, outcome: { kind: 'declined', detail: 'over limit', inDoubt: false }, firstCheckMs: 500, trace: {} },
    {
      orderId: ids[3]!,
      attempts: 3,
      outcome: { kind: 'unavailable', detail: 'timeout', inDoubt: true },
      lastSentAt: sentAt,
      firstCheckMs: 60_000,
      trace: {},
    },
    { orderId: ids[4]!, attempts: 1, outcome: { kind: 'captured', chargeId: 'ch_4' }, firstCheckMs: 500, trace: {} },
  ];

  // Each charge's own trace context: a group is written in one caller's context, each event joins its own trace.
  const traceOf = (i: number) => `00-${String(i + 1).padStart(32, '0')}-${'0'.repeat(15)}1-01`;
  items.forEach((item, i) => (item.trace = { traceparent: traceOf(i) }));

  const results = await recordOutcomes(db, names, items);

  // Each recorded charge comes back with its own event, for the relay to publish once committed.
  const withEvent = (label: string, refund: boolean, type: string) => ({
    recorded: true,
    label,
    refund,
    event: expect.objectContaining({ type }),
  });
  expect(results).toEqual([
    withEvent('captured', false, 'payments.completed'),
    withEvent('order_cancelled', true, 'payments.failed'),
    withEvent('declined', false, 'payments.failed'),
    withEvent('gateway_unavailable', false, 'payments.failed'),
    { recorded: false },
  ]);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT order_id, status, charge_id, attempts, reason, answered, in_doubt, in_doubt_last_sent_at,
            in_doubt_next_at > now() + interval '50 seconds' AS later FROM payments WHERE order_id = ANY($1::uuid[])`,
    [ids],
  );
  const row = (i: number) => rows.find((r) => r.order_id === ids[i]);
  expect(row(0)).toMatchObject({ status: 'captured', charge_id: 'ch_0', attempts: 1, reason: null, answered: true, in_doubt: false });
  expect(row(1)).toMatchObject({ status: 'captured', charge_id: 'ch_1', attempts: 2, answered: true });
  expect(row(2)).toMatchObject({ status: 'declined', reason: 'payment_declined', attempts: 1, answered: true, in_doubt: false });
  expect(row(3)).toMatchObject({ status: 'failed', reason: 'gateway_unavailable', attempts: 3, in_doubt: true, later: true });
  expect(new Date(row(3)!.in_doubt_last_sent_at as string).toISOString()).toBe(sentAt.toISOString());
  expect(row(4)).toMatchObject({ status: 'failed', charge_id: null, attempts: 0, answered: false });

  const outbox = await db.query<{ event_id: string; subject: string; payload: string; traceparent: string }>(
    `SELECT event_id, subject, payload, headers->>'traceparent' AS traceparent FROM outbox ORDER BY id`,
  );
  // The events handed back are the rows written, trace context included.
  expect(results.flatMap((r) => (r.recorded ? [[r.event.id, r.event.headers.traceparent]] : [])).sort()).toEqual(
    outbox.map((o) => [o.event_id, o.traceparent]).sort(),
  );
  const events = outbox.map((o) => ({ type: names.eventType(o.subject), ...(JSON.parse(o.payload) as Record<string, unknown>) }));
  for (const o of outbox) {
    const orderId = (JSON.parse(o.payload) as { orderId: string }).orderId;
    expect(o.traceparent, `trace of the event of order ${orderId}`).toBe(traceOf((ids as string[]).indexOf(orderId)));
  }
  expect(events).toHaveLength(4);
  expect(events).toEqual(
    expect.arrayContaining([
      expect.objectContaining({
        type: 'payments.completed',
        orderId: ids[0],
        paymentId: 'ch_0',
        amount: 10,
        currency: 'EUR',
        correlationId: 'c-0',
      }),
      expect.objectContaining({ type: 'payments.failed', orderId: ids[1], reason: 'order_cancelled', amount: 11 }),
      expect.objectContaining({ type: 'payments.failed', orderId: ids[2], reason: 'payment_declined', detail: 'over limit', amount: 12 }),
      expect.objectContaining({ type: 'payments.failed', orderId: ids[3], reason: 'gateway_unavailable', detail: 'timeout' }),
    ]),
  );

  // Recording again finds nothing `charging`: no change, no event.
  expect(await recordOutcomes(db, names, items.slice(0, 2))).toEqual([{ recorded: false }, { recorded: false }]);
  expect(await db.query(`SELECT 1 FROM outbox`)).toHaveLength(4);
});
