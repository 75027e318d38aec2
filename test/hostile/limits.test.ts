/**
 * order-service's request limits: per-IP / global rate (RATE_LIMIT_*; 429 problem+json with
 * Retry-After) and the 64 KiB body limit, also for a chunked body that announces no length.
 * Real NATS + Postgres, service in-process.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startService, type RunningService } from '@orderflow/kit';
import { removeTestNamespace, TEST_DATABASE_URL, TEST_NATS_URL, testNamespace, testNats } from '@orderflow/kit/testing';
import { orderService } from '../../services/order-service/src/index.js';

const order = JSON.stringify({ customerId: 'rl', items: [{ productId: 'rl-1', quantity: 1 }] });

function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  return fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then(async (r) => ({
    status: r.status,
    headers: r.headers,
    body: await r.text(),
  }));
}

describe('order-service request limits', () => {
  const ns = testNamespace('limits');
  const schema = `${ns}_order`;
  let svc: RunningService;
  beforeAll(async () => {
    svc = await startService(orderService(), {
      hostname: '127.0.0.1',
      env: {
        PORT: '0',
        NATS_URL: TEST_NATS_URL,
        ORDERFLOW_NAMESPACE: ns,
        DATABASE_URL: TEST_DATABASE_URL,
        DATABASE_SCHEMA: schema,
        LOG_LEVEL: 'error',
        RATE_LIMIT_RPS: '5',
        RATE_LIMIT_BURST: '5',
        RATE_LIMIT_GLOBAL_RPS: '1000',
      },
    });
  });
  afterAll(async () => {
    await svc?.stop();
    await removeTestNamespace(await testNats(), ns, [schema]);
  });

  test('a burst over RATE_LIMIT_BURST gets 429 problem+json with Retry-After, and nothing is written for it', async () => {
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => post(svc.url, order)));
    // Tokens refill at 5/s while the burst is in flight (longer on a busy machine): the burst of 5
    // plus what refilled meanwhile, never more.
    const refilled = Math.ceil(((performance.now() - started) / 1000) * 5);
    const ok = results.filter((r) => r.status === 202);
    const limited = results.filter((r) => r.status === 429);
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(ok.length).toBeLessThanOrEqual(5 + refilled);
    expect(limited.length).toBe(20 - ok.length);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) {
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(r.body)).toMatchObject({ status: 429, title: 'Too Many Requests' });
    }
    const [{ n }] = (await svc.ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')) as [{ n: number }];
    expect(n).toBe(ok.length);
    // The bucket refills: after Retry-After the client is served again.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await post(svc.url, order)).status).toBe(202);
  });

  test('a body over 64 KiB is 413, with Content-Length or chunked', async () => {
    await new Promise((r) => setTimeout(r, 1200)); // tokens back
    const big = JSON.stringify({ customerId: 'x'.repeat(70 * 1024), items: [{ productId: 'rl-1', quantity: 1 }] });
    const withLength = await post(svc.url, big);
    expect(withLength.status).toBe(413);
    expect(withLength.headers.get('content-type')).toBe('application/problem+json');
    // Chunked: no Content-Length to reject up front; the limit must still hold while streaming.
    const { port } = new URL(svc.url);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/orders',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 80; i++) req.write('x'.repeat(1024));
      req.end();
    });
    expect(chunked).toBe(413);
    const [{ n }] = (await svc.ctx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE length(customer_id) > 1000`)) as [
      { n: number },
    ];
    expect(n).toBe(0);
  });
});
