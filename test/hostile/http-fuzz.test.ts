/**
 * Hostile HTTP input against every endpoint of order, inventory and payment service (in-process
 * on the real NATS + Postgres via the Platform harness). Requests go over raw TCP so that
 * generated headers can hold what fetch would refuse to send: control characters, raw UTF-8,
 * prototype-pollution names, huge values. Properties: never a 5xx; nothing is written unless the
 * service said it was (every order row and every orders.created event belongs to a 2xx answer;
 * no product row appears without a 200 PUT); Object.prototype stays clean.
 */
import { connect as tcpConnect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readStream, testNats } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';
import type { ServiceName } from '../support/topology.js';

interface RawResponse {
  status: number;
  body: string;
}

/** Sends bytes as they are; status 0 when the server closed the connection without an answer. */
function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Array<[string, string]>,
  body: Buffer | undefined,
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const done = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    };
    s.setTimeout(15_000, () => s.destroy());
    s.on('data', (b) => chunks.push(b));
    s.on('close', done);
    s.on('error', () => undefined);
    const head = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close', ...headers.map(([k, v]) => `${k}: ${v}`)];
    if (body) head.push(`Content-Length: ${body.length}`);
    s.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'utf8'), body ?? Buffer.alloc(0)]));
  });
}

const UUID = '3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f';
const ENDPOINTS: Array<{ service: ServiceName; paths: string[] }> = [
  { service: 'order-service', paths: ['/orders', `/orders/${UUID}`, '/orders/not-a-uuid', '/health', '/ready', '/metrics'] },
  {
    service: 'inventory-service',
    paths: ['/products', '/products/fuzz-sku', '/products?limit=5', `/reservations/${UUID}`, '/health', '/ready'],
  },
  { service: 'payment-service', paths: [`/payments/${UUID}`, '/payments/x', '/health', '/ready'] },
];

const method = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE'),
  fc.stringMatching(/^[A-Z]{1,10}$/),
);

/** Path: a known route, maybe with a generated tail or query (percent-encoded so the request line stays parseable). */
const path = fc.tuple(
  fc.constantFrom(...ENDPOINTS.flatMap((e) => e.paths.map((p) => ({ service: e.service, p })))),
  fc.oneof(
    fc.constant(''),
    fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => `/${encodeURIComponent(s)}`),
    fc.string({ maxLength: 40 }).map((s) => `?${encodeURIComponent(s)}=${encodeURIComponent(s)}`),
    fc.constantFrom('/..%2f..%2fetc%2fpasswd', '/%00', '?limit=-1', '?limit=1e309', '?limit=__proto__', '/%F0%9F%92%A5'.repeat(50)),
  ),
);

const protoKeys = fc.constantFrom('__proto__', 'constructor', 'prototype', '__defineGetter__', 'toString', 'hasOwnProperty');
const headerName = fc.oneof(
  fc.constantFrom('Content-Type', 'Idempotency-Key', 'X-Correlation-ID', 'Accept', 'Transfer-Encoding', 'Content-Encoding'),
  protoKeys,
  fc.stringMatching(/^[A-Za-z0-9-]{1,30}$/),
);
const headerValue = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  // Control characters: the HTTP parser must refuse them, never the application crash on them.
  fc.array(fc.integer({ min: 0, max: 31 }), { minLength: 1, maxLength: 10 }).map((cs) => `a${String.fromCharCode(...cs)}b`),
  fc.integer({ min: 1000, max: 40_000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-16',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    'application/problem+json',
    '*/*',
    '',
  ),
);
const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=zz',
  'application/vnd.api+json',
  undefined,
);

const validOrder = { customerId: 'fuzz', items: [{ productId: 'fuzz-sku', quantity: 1 }] };
const body = fc.oneof(
  fc.jsonValue().map((j) => JSON.stringify(j)),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  // Near-valid orders with pollution keys and wrong types, at any depth.
  fc
    .record({ key: protoKeys, at: fc.constantFrom('root', 'item'), value: fc.jsonValue() })
    .map(({ key, at, value }) =>
      at === 'root'
        ? `{"customerId":"fuzz","items":[{"productId":"fuzz-sku","quantity":1}],"${key}":${JSON.stringify(value)}}`
        : `{"customerId":"fuzz","items":[{"productId":"fuzz-sku","quantity":1,"${key}":${JSON.stringify(value)}}]}`,
    ),
  fc
    .record({
      customerId: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      items: fc.oneof(
        fc.array(fc.record({ productId: fc.string(), quantity: fc.oneof(fc.integer(), fc.double(), fc.string()) })),
        fc.object(),
      ),
    })
    .map((o) => JSON.stringify(o)),
  fc.constantFrom(
    JSON.stringify(validOrder),
    '{"onHand": 5}',
    '{"onHand": -1}',
    '{"onHand": 1e400}',
    '[]',
    'null',
    '{"a":'.repeat(2000),
    `{"customerId":"${'x'.repeat(70_000)}","items":[]}`,
  ),
);

interface Outcome {
  service: ServiceName;
  method: string;
  path: string;
  status: number;
  body: string;
}

describe('hostile HTTP input at every endpoint', () => {
  const p = new Platform();
  const outcomes: Outcome[] = [];
  let productsBefore: string[] = [];

  beforeAll(async () => {
    await p.start();
    await p.setStock('fuzz-sku', 1_000_000, 1);
    productsBefore = (await p.query<{ product_id: string }>('inventory-service', 'SELECT product_id FROM products')).map(
      (r) => r.product_id,
    );
  }, 60_000);
  afterAll(async () => {
    await p.stop();
  });

  const port = (service: ServiceName) => Number(new URL(p.url(service)).port);

  test('generated methods, paths, headers, content types and bodies: never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        method,
        path,
        fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }),
        contentType,
        fc.option(body, { nil: undefined }),
        async (m, [route, tail], headers, ct, b) => {
          const hs: Array<[string, string]> = ct ? [['Content-Type', ct], ...headers] : headers;
          const r = await rawRequest(port(route.service), m, route.p + tail, hs, b === undefined ? undefined : Buffer.from(b, 'utf8'));
          outcomes.push({ service: route.service, method: m, path: route.p + tail, status: r.status, body: r.body.slice(0, 300) });
          expect(r.status, `${m} ${route.p + tail} → ${r.status} ${r.body.slice(0, 300)}`).toBeLessThan(500);
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
    );
  }, 120_000);

  test('bodies thrown at the two writing endpoints, mostly as JSON: never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<[ServiceName, string, string]>(
          ['order-service', 'POST', '/orders'],
          ['inventory-service', 'PUT', '/products/fuzz-new'],
        ),
        body,
        fc.option(fc.string({ minLength: 1, maxLength: 300 }), { nil: undefined }),
        fc.oneof({ weight: 4, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: contentType }),
        async ([service, m, pth], b, idem, ct) => {
          const hs: Array<[string, string]> = ct ? [['Content-Type', ct]] : [];
          if (idem !== undefined) hs.push(['Idempotency-Key', idem.replace(/[\r\n]/g, '')]);
          const r = await rawRequest(port(service), m, pth, hs, Buffer.from(b, 'utf8'));
          outcomes.push({ service, method: m, path: pth, status: r.status, body: r.body.slice(0, 300) });
          expect(r.status, `${m} ${pth} → ${r.status} ${r.body.slice(0, 300)}`).toBeLessThan(500);
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
    );
  }, 120_000);

  test('nothing was written that was not answered 2xx; Object.prototype untouched', async () => {
    // Orders: each row was returned by a 2xx POST /orders.
    const okOrderIds = new Set(
      outcomes
        .filter((o) => o.service === 'order-service' && o.method === 'POST' && o.status >= 200 && o.status < 300)
        .map((o) => (/"orderId":"([0-9a-f-]{36})"/.exec(o.body) ?? [])[1])
        .filter((x): x is string => !!x),
    );
    const rows = await p.query<{ id: string }>('order-service', 'SELECT id::text FROM orders');
    expect(rows.map((r) => r.id).filter((id) => !okOrderIds.has(id))).toEqual([]);
    // Events: every orders.created is one of those orders.
    const nc = await testNats();
    try {
      const created = (await readStream(nc, `${p.ns.toUpperCase()}_ORDERS`)).filter((m) => m.subject === `${p.ns}.orders.created`);
      const strays = created.map((m) => (m.json as { orderId?: string }).orderId).filter((id) => !id || !okOrderIds.has(id));
      expect(strays).toEqual([]);
    } finally {
      await nc.close();
    }
    // Products: only the ones set before, plus fuzz-new if some PUT was answered 200.
    const okPut = outcomes.some(
      (o) => o.service === 'inventory-service' && o.method === 'PUT' && o.path === '/products/fuzz-new' && o.status === 200,
    );
    const products = (await p.query<{ product_id: string }>('inventory-service', 'SELECT product_id FROM products'))
      .map((r) => r.product_id)
      .sort();
    expect(products).toEqual([...productsBefore, ...(okPut ? ['fuzz-new'] : [])].sort());
    // No pollution of the process the services run in.
    for (const k of ['polluted', 'admin', 'isAdmin', 'a', 'x']) expect((Object.prototype as Record<string, unknown>)[k], k).toBeUndefined();
    // The runs did reach the application (not only the HTTP parser): a spread of statuses.
    const statuses = new Set(outcomes.map((o) => o.status));
    for (const s of [400, 404, 405, 415]) expect(statuses.has(s), `saw ${s} among ${[...statuses].join(',')}`).toBe(true);
  });
});
