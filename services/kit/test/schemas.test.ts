import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeEvent, makeEvent, Names, PoisonMessageError } from '@orderflow/kit';
import { renderJsonSchemas, schemasDir } from '../src/events/export-json-schema.js';
import { headers } from '@nats-io/transport-node';

describe('event contracts', () => {
  test('the committed JSON Schema files are current (run `npm run schemas` after changing a schema)', () => {
    const rendered = renderJsonSchemas();
    const dir = schemasDir();
    const onDisk = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(onDisk.sort()).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) expect(readFileSync(join(dir, file), 'utf8'), file).toBe(text);
  });

  test('every schema has a versioned $id', () => {
    for (const [file, text] of renderJsonSchemas()) {
      const json = JSON.parse(text) as { $id: string };
      expect(json.$id, file).toMatch(/\/v\d+\.json$/);
    }
  });

  const names = new Names('t_contract');
  const good = {
    version: 'v1' as const,
    orderId: '6a1f0b52-0d3a-4c2e-9a55-2f1f5d0e8b11',
    correlationId: 'c-1',
    occurredAt: new Date().toISOString(),
    customerId: 'cust',
    currency: 'USD' as const,
    items: [{ productId: 'sku-1', quantity: 1 }],
  };

  test('makeEvent sets id, type, version and correlation headers and the namespaced subject', () => {
    const e = makeEvent(names, 'orders.created', good);
    expect(e.subject).toBe('t_contract.orders.created');
    expect(e.headers).toMatchObject({
      'Event-Type': 'orders.created',
      'Event-Version': 'v1',
      'X-Correlation-ID': 'c-1',
      'Nats-Msg-Id': e.id,
    });
  });

  test('makeEvent refuses an event that breaks its own contract', () => {
    expect(() => makeEvent(names, 'orders.created', { ...good, items: [] })).toThrow(/refusing to publish invalid orders.created/);
  });

  const h = (type: string, version = 'v1') => {
    const x = headers();
    x.set('Event-Type', type);
    x.set('Event-Version', version);
    x.set('Nats-Msg-Id', 'id-1');
    return x;
  };
  const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

  test.each([
    ['not JSON', enc('{nope'), h('orders.created'), /not JSON/],
    ['unknown version', enc({ ...good, version: 'v9' }), h('orders.created', 'v9'), /unknown version v9/],
    ['schema violation', enc({ ...good, items: 'x' }), h('orders.created'), /invalid orders.created v1: items/],
    ['unknown field', enc({ ...good, extra: 1 }), h('orders.created'), /extra/],
    ['unknown type', enc(good), h('orders.exploded'), /unknown event type/],
  ])('decodeEvent rejects %s as poison', (_n, data, hdrs, reason) => {
    expect(() => decodeEvent(names, 't_contract.orders.created', data, hdrs)).toThrow(PoisonMessageError);
    expect(() => decodeEvent(names, 't_contract.orders.created', data, hdrs)).toThrow(reason);
  });

  test('decodeEvent accepts a valid event', () => {
    const e = decodeEvent(names, 't_contract.orders.created', enc(good), h('orders.created'));
    expect(e).toMatchObject({ id: 'id-1', type: 'orders.created', version: 'v1', correlationId: 'c-1' });
  });
});
