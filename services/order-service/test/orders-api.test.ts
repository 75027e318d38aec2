import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import type { RunningService } from '@orderflow/kit';
import { readStream, startTestService, testNamespace, waitFor, type Backend, type TestService } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// The same API suite on both database backends: real Postgres (own schema) and embedded PGlite.
describe.each<Backend>(['postgres', 'pglite'])('order-service API on %s', (backend) => {
  const ns = testNamespace();
  const stream = `${ns.toUpperCase()}_ORDERS`;
  let svc: RunningService;
  let nc: NatsConnection;
  let t: TestService;

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const count = async (table: string) => Number((await svc.ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n);
  const streamMessages = async () => (await svc.ctx.nats.current!.jsm.streams.info(stream)).state.messages;
  /** Waits for the outbox to drain so "no event" assertions are not vacuous. */
  const drained = () => waitFor('outbox drained', async () => (await count('outbox')) === 0);

  beforeAll(async () => {
    t = await startTestService(orderService(), { label: 'orders', backend: backend, env: { ORDERFLOW_NAMESPACE: ns } });
    svc = t.svc;
    nc = t.nc;
  });
  afterAll(async () => {
    await t?.stop();
  });

  const valid = { customerId: 'cust-1', items: [{ productId: 'sku-1', quantity: 2 }] };

  test('a valid order is accepted, stored pending, and orders.created reaches JetStream with every header', async () => {
    const r = await post(valid, { 'X-Correlation-ID': 'corr-abc-1' });
    expect(r.status).toBe(202);
    expect(r.headers.get('x-correlation-id')).toBe('corr-abc-1');
    const body = (await r.json()) as { orderId: string; status: string };
    expect(body.status).toBe('pending');
    expect(r.headers.get('location')).toBe(`/orders/${body.orderId}`);

    const g = await fetch(`${svc.url}/orders/${body.orderId}`);
    expect(g.status).toBe(200);
    const order = (await g.json()) as Record<string, unknown>;
    expect(order).toMatchObject({
      orderId: body.orderId,
      status: 'pending',
      items: valid.items,
      currency: 'USD',
      correlationId: 'corr-abc-1',
    });
    expect((order.history as Array<{ status: string }>)[0]!.status).toBe('pending');

    await waitFor('event in stream', async () =>
      (await readStream(nc, stream)).some((m) => (m.json as { orderId: string }).orderId === body.orderId),
    );
    const msg = (await readStream(nc, stream)).find((m) => (m.json as { orderId: string }).orderId === body.orderId)!;
    expect(msg.subject).toBe(`${ns}.orders.created`);
    expect(msg.headers['Nats-Msg-Id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(msg.headers['Event-Type']).toBe('orders.created');
    expect(msg.headers['Event-Version']).toBe('v1');
    expect(msg.headers['X-Correlation-ID']).toBe('corr-abc-1');
    expect(msg.json).toMatchObject({
      version: 'v1',
      orderId: body.orderId,
      customerId: 'cust-1',
      items: valid.items,
      correlationId: 'corr-abc-1',
    });
  });

  test('a correlation id is generated when none (or a malformed one) is given', async () => {
    const r = await post(valid, { 'X-Correlation-ID': 'bad id with spaces' });
    expect(r.status).toBe(202);
    expect(r.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('the same Idempotency-Key twice gives one order and one event; a different body with it is 409', async () => {
    await drained();
    const before = await streamMessages();
    const key = `key-${backend}-${Date.now()}`;
    const a = await post(valid, { 'Idempotency-Key': key });
    // Same logical body, other key order and spacing.
    const b = await post(`{ "items": [{"quantity": 2, "productId": "sku-1"}], "customerId": "cust-1" }`, { 'Idempotency-Key': key });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    const [ja, jb] = (await Promise.all([a.json(), b.json()])) as Array<{ orderId: string }>;
    expect(jb!.orderId).toBe(ja!.orderId);
    const c = await post({ ...valid, items: [{ productId: 'sku-1', quantity: 3 }] }, { 'Idempotency-Key': key });
    expect(c.status).toBe(409);
    expect(c.headers.get('content-type')).toContain('application/problem+json');
    await drained();
    expect(await streamMessages()).toBe(before + 1);
    const rows = await svc.ctx.db.query(`SELECT id FROM orders WHERE id = $1`, [ja!.orderId]);
    expect(rows).toHaveLength(1);
  });

  test('racing requests with one Idempotency-Key create one order', async () => {
    const key = `race-${backend}-${Date.now()}`;
    const rs = await Promise.all(Array.from({ length: 8 }, () => post(valid, { 'Idempotency-Key': key })));
    const ids = new Set(await Promise.all(rs.map(async (r) => ((await r.json()) as { orderId: string }).orderId)));
    expect(ids.size).toBe(1);
    expect(rs.filter((r) => r.status === 202)).toHaveLength(1);
  });

  const bad: Array<[string, () => Promise<Response>, number, RegExp?]> = [
    ['invalid JSON', () => post('{"customerId": '), 400],
    ['missing fields', () => post({}), 400, /customerId|items/],
    ['quantity 0', () => post({ customerId: 'c', items: [{ productId: 'p', quantity: 0 }] }), 400, /items\.0\.quantity/],
    ['negative quantity', () => post({ customerId: 'c', items: [{ productId: 'p', quantity: -3 }] }), 400, /items\.0\.quantity/],
    ['float quantity', () => post({ customerId: 'c', items: [{ productId: 'p', quantity: 1.5 }] }), 400, /items\.0\.quantity/],
    ['huge quantity', () => post({ customerId: 'c', items: [{ productId: 'p', quantity: 1e12 }] }), 400, /items\.0\.quantity/],
    [
      '101 items',
      () => post({ customerId: 'c', items: Array.from({ length: 101 }, (_, i) => ({ productId: `p${i}`, quantity: 1 })) }),
      400,
      /items/,
    ],
    ['no items', () => post({ customerId: 'c', items: [] }), 400, /items/],
    ['unknown field (rejected, not stripped)', () => post({ ...valid, discount: 50 }), 400, /discount/],
    ['unknown currency', () => post({ ...valid, currency: 'XXX' }), 400, /currency/],
    ['65 KiB body', () => post({ ...valid, customerId: 'x'.repeat(65 * 1024) }), 413],
    [
      'text/plain',
      () => fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(valid) }),
      415,
    ],
    ['no content type', () => fetch(`${svc.url}/orders`, { method: 'POST', body: new Blob([JSON.stringify(valid)]) }), 415],
    ['bad Idempotency-Key', () => post(valid, { 'Idempotency-Key': 'has space' }), 400],
  ];

  test.each(bad)('bad input: %s → problem, no row, no event', async (_name, send, status, pathPattern) => {
    await drained();
    const [orders0, events0] = [await count('orders'), await streamMessages()];
    const r = await send();
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    const p = (await r.json()) as {
      status: number;
      title: string;
      detail: string;
      type: string;
      errors?: Array<{ path: string; message: string }>;
    };
    expect(p.status).toBe(status);
    expect(p.title).toBeTruthy();
    expect(p.detail).toBeTruthy();
    if (pathPattern) expect(p.errors?.map((e) => e.path).join(' ')).toMatch(pathPattern);
    // Give a wrongly written event the chance to appear before asserting it did not.
    await svc.ctx.relay.flushOnce();
    expect(await count('orders')).toBe(orders0);
    expect(await count('outbox')).toBe(0);
    expect(await streamMessages()).toBe(events0);
  });

  test('unknown order → 404 problem; wrong method → 405', async () => {
    const a = await fetch(`${svc.url}/orders/00000000-0000-4000-8000-000000000000`);
    expect(a.status).toBe(404);
    expect(((await a.json()) as { status: number }).status).toBe(404);
    expect((await fetch(`${svc.url}/orders/not-a-uuid`)).status).toBe(404);
    expect((await fetch(`${svc.url}/orders`, { method: 'DELETE' })).status).toBe(405);
  });

  test('/health, /ready and /metrics', async () => {
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
    const ready = await fetch(`${svc.url}/ready`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/orderflow_nats_published_total\{[^}]*subject="[^"]*orders\.created"[^}]*\} [1-9]/);
    expect(metrics).toContain('process_cpu_user_seconds_total');
  });
});
