import { afterAll, beforeAll, expect, test } from 'vitest';
import { randomUUID } from 'node:crypto';
import { waitFor } from '@orderflow/kit/testing';
import { startGateway, type GatewayStats, type RunningGateway } from '../src/index.js';

let gw: RunningGateway;
beforeAll(async () => {
  gw = await startGateway({ port: 0, hostname: '127.0.0.1', env: { LOG_LEVEL: 'warn' } });
});
afterAll(async () => {
  await gw?.stop();
});

const post = (path: string, body: unknown, key?: string) =>
  fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
const stats = async () => (await (await fetch(`${gw.url}/stats`)).json()) as GatewayStats;

test('a charge is captured once per idempotency key, even when requests race', async () => {
  const orderId = randomUUID();
  const before = await stats();
  const [a, b] = await Promise.all([
    post('/charges', { orderId, amount: 25, currency: 'USD' }, orderId),
    post('/charges', { orderId, amount: 25, currency: 'USD' }, orderId),
  ]);
  const c = await post('/charges', { orderId, amount: 25, currency: 'USD' }, orderId);
  expect([a.status, b.status, c.status]).toEqual([201, 201, 201]);
  const bodies = (await Promise.all([a.json(), b.json(), c.json()])) as Array<{ chargeId: string; status: string; amount: number }>;
  expect(new Set(bodies.map((x) => x.chargeId)).size).toBe(1);
  expect(bodies[0]).toMatchObject({ status: 'captured', amount: 25 });
  expect((await stats()).captures - before.captures).toBe(1);
  const list = (await (await fetch(`${gw.url}/charges?orderId=${orderId}`)).json()) as { charges: unknown[] };
  expect(list.charges).toHaveLength(1);
});

test('the same key with a different request is a conflict', async () => {
  const orderId = randomUUID();
  expect((await post('/charges', { orderId, amount: 1, currency: 'USD' }, orderId)).status).toBe(201);
  expect((await post('/charges', { orderId, amount: 2, currency: 'USD' }, orderId)).status).toBe(409);
});

test('declines over the limit and for tok_decline, without capturing', async () => {
  const before = await stats();
  const over = await post('/charges', { orderId: randomUUID(), amount: 10_000.01, currency: 'EUR' }, randomUUID());
  expect(over.status).toBe(402);
  expect(await over.json()).toEqual({ status: 'declined', reason: 'amount_over_limit' });
  const tok = await post('/charges', { orderId: randomUUID(), amount: 5, currency: 'EUR', cardToken: 'tok_decline' }, randomUUID());
  expect(tok.status).toBe(402);
  expect(await tok.json()).toMatchObject({ status: 'declined', reason: 'card_declined' });
  const after = await stats();
  expect(after.declines - before.declines).toBe(2);
  expect(after.captures).toBe(before.captures);
});

test('rejects a request without Idempotency-Key or with a bad body', async () => {
  expect((await post('/charges', { orderId: randomUUID(), amount: 5, currency: 'USD' })).status).toBe(400);
  const bad = await post('/charges', { orderId: '', amount: -1, currency: 'usd' }, randomUUID());
  expect(bad.status).toBe(400);
  expect(bad.headers.get('content-type')).toContain('application/problem+json');
  expect(((await bad.json()) as { errors: unknown[] }).errors).toHaveLength(3);
});

test('injected failures answer 503 and store nothing, so the same key succeeds after recovery', async () => {
  const orderId = randomUUID();
  const before = await stats();
  expect((await post('/admin/config', { failureRate: 1 })).status).toBe(200);
  expect((await post('/charges', { orderId, amount: 3, currency: 'USD' }, orderId)).status).toBe(503);
  expect((await post('/admin/config', { failureRate: 0 })).status).toBe(200);
  expect((await post('/charges', { orderId, amount: 3, currency: 'USD' }, orderId)).status).toBe(201);
  const after = await stats();
  expect(after.failures - before.failures).toBe(1);
  expect(after.captures - before.captures).toBe(1);
  expect((await post('/admin/config', { failureRate: 2 })).status).toBe(400);
});

test('a refund happens once per charge', async () => {
  const orderId = randomUUID();
  const { chargeId } = (await (await post('/charges', { orderId, amount: 9, currency: 'USD' }, orderId)).json()) as { chargeId: string };
  const before = await stats();
  const r1 = await post('/refunds', { chargeId }, `refund-${orderId}`);
  const r2 = await post('/refunds', { chargeId }, `refund-${orderId}`);
  const r3 = await post('/refunds', { chargeId }, 'another-key');
  expect([r1.status, r2.status, r3.status]).toEqual([201, 201, 200]);
  expect((await stats()).refunds - before.refunds).toBe(1);
  expect((await post('/refunds', { chargeId: 'ch_nope' }, randomUUID())).status).toBe(404);
  const list = (await (await fetch(`${gw.url}/charges?orderId=${orderId}`)).json()) as { charges: Array<{ status: string }> };
  expect(list.charges[0]?.status).toBe('refunded');
});

test(
  'captureDelayMs: the charge is captured after the client gave up; lookups are not delayed; lowering it ' + 'releases the charge',
  async () => {
    const orderId = randomUUID();
    const before = await stats();
    try {
      expect((await post('/admin/config', { captureDelayMs: 600_000 })).status).toBe(200);
      const client = new AbortController();
      const gaveUp = fetch(`${gw.url}/charges`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': orderId },
        body: JSON.stringify({ orderId, amount: 4, currency: 'USD' }),
        signal: client.signal,
      }).catch((err: unknown) => err);
      await waitFor('the charge arrived', async () => (gw.stats.chargeRequests > before.chargeRequests ? true : undefined));
      client.abort();
      expect(await gaveUp).toBeInstanceOf(Error);
      const lookup = async () =>
        ((await (await fetch(`${gw.url}/charges?orderId=${orderId}`)).json()) as { charges: Array<{ status: string }> }).charges;
      expect(await lookup()).toEqual([]);
      expect((await post('/admin/config', { captureDelayMs: 0 })).status).toBe(200);
      await waitFor('captured late', async () => ((await lookup())[0]?.status === 'captured' ? true : undefined));
    } finally {
      await post('/admin/config', { captureDelayMs: 0 });
    }
  },
);

test('keyInUse conflict: a request whose key is held by one still running answers 409; afterwards the key replays the result', async () => {
  const orderId = randomUUID();
  const body = { orderId, amount: 6, currency: 'USD' };
  const before = await stats();
  try {
    expect((await post('/admin/config', { captureDelayMs: 600_000, keyInUse: 'conflict' })).status).toBe(200);
    const first = post('/charges', body, orderId);
    await waitFor('the first request arrived', async () => (gw.stats.chargeRequests > before.chargeRequests ? true : undefined));
    const second = await post('/charges', body, orderId);
    expect(second.status).toBe(409);
    expect(gw.stats.keyInUse - before.keyInUse).toBe(1);
    expect((await post('/admin/config', { captureDelayMs: 0 })).status).toBe(200);
    const a = (await (await first).json()) as { chargeId: string };
    const replay = await post('/charges', body, orderId);
    expect(replay.status).toBe(201);
    expect(((await replay.json()) as { chargeId: string }).chargeId).toBe(a.chargeId);
    expect(gw.stats.captures - before.captures).toBe(1);
    expect((await post('/admin/config', { keyInUse: 'sometimes' })).status).toBe(400);
  } finally {
    await post('/admin/config', { captureDelayMs: 0, keyInUse: 'wait' });
  }
});

test(
  'maxProcessingMs: a charge not captured by its deadline is dropped (504, nothing stored), and a retry with ' +
    'the same key is a new request',
  async () => {
    const orderId = randomUUID();
    const body = { orderId, amount: 8, currency: 'USD' };
    const before = await stats();
    try {
      // The capture would come long after the deadline: the gateway gives up on it at the deadline.
      expect((await post('/admin/config', { captureDelayMs: 600_000, maxProcessingMs: 300 })).status).toBe(200);
      const r = await post('/charges', body, orderId);
      expect(r.status).toBe(504);
      expect(gw.stats.dropped - before.dropped).toBe(1);
      expect(gw.stats.captures - before.captures).toBe(0);
      expect(((await (await fetch(`${gw.url}/charges?orderId=${orderId}`)).json()) as { charges: unknown[] }).charges).toEqual([]);
      // Within the deadline the same key captures: the dropped request left nothing to replay.
      expect((await post('/admin/config', { captureDelayMs: 0, maxProcessingMs: 60_000 })).status).toBe(200);
      expect((await post('/charges', body, orderId)).status).toBe(201);
      expect((await post('/admin/config', { maxProcessingMs: 0 })).status).toBe(400);
    } finally {
      await post('/admin/config', { captureDelayMs: 0, maxProcessingMs: 60_000 });
    }
  },
);
