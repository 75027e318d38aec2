import { afterAll, beforeAll, expect, test } from 'vitest';
import { startService, type RunningService } from '@orderflow/kit';
import { deleteNamespaceStreams, testDbEnv, testNamespace, testNats, TEST_NATS_URL, waitFor } from '@orderflow/kit/testing';
import { inventoryService } from '../src/index.js';

const ns = testNamespace('invh');
let svc: RunningService;
let cleanup: () => Promise<void> = async () => {};

beforeAll(async () => {
  const db = await testDbEnv('postgres', 'inv_http');
  cleanup = db.cleanup;
  svc = await startService(inventoryService(), {
    env: { PORT: '0', NATS_URL: TEST_NATS_URL, ORDERFLOW_NAMESPACE: ns, LOG_LEVEL: 'warn', ...db.env },
  });
  await waitFor('ready', async () => (await fetch(`${svc.url}/ready`)).ok);
});

afterAll(async () => {
  await svc?.stop();
  const nc = await testNats();
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
  await cleanup();
});

const put = (id: string, body: string, contentType = 'application/json') =>
  fetch(`${svc.url}/products/${id}`, { method: 'PUT', headers: { 'content-type': contentType }, body });

async function expectProblem(r: Response, status: number) {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await r.json()) as {
    type: string;
    title: string;
    status: number;
    detail: string;
    errors?: Array<{ path: string; message: string }>;
  };
  expect(body).toMatchObject({
    status,
    title: expect.any(String),
    detail: expect.any(String),
    type: expect.stringContaining(String(status)),
  });
  return body;
}

test('PUT sets stock and price; GET shows it; GET /products lists', async () => {
  let r = await put('sku-h1', JSON.stringify({ onHand: 12, price: 4.5 }));
  expect(r.status).toBe(200);
  expect(r.headers.get('x-correlation-id')).toBeTruthy();
  expect(await r.json()).toEqual({ productId: 'sku-h1', onHand: 12, reserved: 0, available: 12, sold: 0, price: 4.5 });
  // Omitting price keeps it.
  r = await put('sku-h1', JSON.stringify({ onHand: 7 }));
  expect(await r.json()).toMatchObject({ onHand: 7, price: 4.5 });
  await put('sku-h0', JSON.stringify({ onHand: 0 }));
  expect(await (await fetch(`${svc.url}/products/sku-h0`)).json()).toEqual({
    productId: 'sku-h0',
    onHand: 0,
    reserved: 0,
    available: 0,
    sold: 0,
  });
  const list = (await (await fetch(`${svc.url}/products`)).json()) as { products: Array<{ productId: string }> };
  expect(list.products.map((p) => p.productId)).toEqual(['sku-h0', 'sku-h1']);
});

test('400 on schema violations, with paths', async () => {
  for (const body of [{ onHand: -1 }, { onHand: 1.5 }, { onHand: '3' }, {}, { onHand: 1, price: -2 }, { onHand: 1, extra: true }]) {
    const p = await expectProblem(await put('sku-v', JSON.stringify(body)), 400);
    expect(p.errors?.length).toBeGreaterThan(0);
  }
  const p = await expectProblem(await put('sku-v', JSON.stringify({ onHand: -1 })), 400);
  expect(p.errors).toEqual([expect.objectContaining({ path: 'onHand' })]);
  await expectProblem(await put('bad%20id', JSON.stringify({ onHand: 1 })), 400);
});

test('400 when onHand would drop below what is reserved', async () => {
  await put('sku-r', JSON.stringify({ onHand: 5 }));
  await svc.ctx.db.query(`UPDATE products SET reserved = 4 WHERE product_id = 'sku-r'`);
  const p = await expectProblem(await put('sku-r', JSON.stringify({ onHand: 3 })), 400);
  expect(p.detail).toMatch(/reserved/);
  expect((await put('sku-r', JSON.stringify({ onHand: 4 }))).status).toBe(200);
});

test('400 bad JSON, 415 wrong content type, 413 body too large', async () => {
  const bad = await expectProblem(await put('sku-j', '{"onHand":'), 400);
  expect(bad.title).toBe('Invalid JSON');
  await expectProblem(await put('sku-j', JSON.stringify({ onHand: 1 }), 'text/plain'), 415);
  await expectProblem(await put('sku-j', JSON.stringify({ onHand: 1, pad: 'x'.repeat(70 * 1024) })), 413);
  expect((await fetch(`${svc.url}/products/sku-j`)).status).toBe(404);
});

test('404 for unknown products and reservations, 405 for other methods', async () => {
  const p = await expectProblem(await fetch(`${svc.url}/products/nope`), 404);
  expect(p.detail).toContain('nope');
  await expectProblem(await fetch(`${svc.url}/reservations/not-a-uuid`), 404);
  await expectProblem(await fetch(`${svc.url}/reservations/00000000-0000-4000-8000-000000000000`), 404);
  await expectProblem(await fetch(`${svc.url}/products/x`, { method: 'DELETE' }), 405);
});
