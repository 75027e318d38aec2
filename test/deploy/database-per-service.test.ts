/**
 * database.services.<service>: a database per saga service beside the shared database.url /
 * existingSecret, rendered by the real helm. Where each workload's DATABASE_URL comes from, the
 * Secrets the chart writes, and what it refuses.
 */
import { describe, it, expect } from 'vitest';
import { Buffer } from 'node:buffer';
import { render, renderFailure, type Dict } from './helm.js';

const GATEWAY = { paymentService: { gatewayUrl: 'https://payments.example.com' } };
const SAGA = ['order-service', 'inventory-service', 'payment-service'] as const;

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };

/** Workload -> its DATABASE_URL secretKeyRef (undefined: none) and DATABASE_SCHEMA. */
function databaseOf(docs: Dict[]): Map<string, { ref?: { name: string; key: string }; schema?: string }> {
  const out = new Map<string, { ref?: { name: string; key: string }; schema?: string }>();
  for (const d of docs.filter((x) => x.kind === 'Deployment')) {
    const w = ((d.metadata as Dict).labels as Record<string, string>)['app.kubernetes.io/name']!;
    const env = ((d.spec as Dict).template as { spec: { containers: { env?: EnvVar[] }[] } }).spec.containers.flatMap((c) => c.env ?? []);
    out.set(w, {
      ref: env.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef,
      schema: env.find((e) => e.name === 'DATABASE_SCHEMA')?.value,
    });
  }
  return out;
}
const secrets = (docs: Dict[]) =>
  new Map(docs.filter((d) => d.kind === 'Secret').map((d) => [String((d.metadata as Dict).name), d.data as Record<string, string>]));
const decode = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('utf8');

describe('database per service', () => {
  it('shared only (the default): every saga service reads the one shared URL; no other workload gets one', () => {
    const docs = render([GATEWAY, { database: { url: 'postgres://u:p@shared:5432/orderflow' } }, { sandboxGateway: { enabled: true } }]);
    const db = databaseOf(docs);
    for (const w of SAGA)
      expect(db.get(w), w).toEqual({ ref: { name: 'orderflow-secrets', key: 'DATABASE_URL' }, schema: w.replace(/-/g, '_') });
    for (const w of ['sandbox-gateway', 'console', 'operator']) expect(db.get(w)?.ref, w).toBeUndefined();
    expect(decode(secrets(docs).get('orderflow-secrets')?.DATABASE_URL)).toBe('postgres://u:p@shared:5432/orderflow');
    expect([...secrets(docs).keys()].filter((n) => n.includes('-db-'))).toEqual([]);
  });

  it('mixed: one service on its own URL, one on its own Secret, one still on the shared database', () => {
    const docs = render([
      GATEWAY,
      {
        database: {
          existingSecret: 'shared-pg',
          existingSecretKey: 'uri',
          services: {
            orderService: { url: 'postgres://o:pw@orders-db:5432/orders' },
            inventoryService: { existingSecret: 'inventory-pg-app', existingSecretKey: 'uri' },
          },
        },
      },
    ]);
    const db = databaseOf(docs);
    expect(db.get('order-service')).toEqual({ ref: { name: 'orderflow-db-order-service', key: 'DATABASE_URL' }, schema: 'order_service' });
    expect(db.get('inventory-service')).toEqual({ ref: { name: 'inventory-pg-app', key: 'uri' }, schema: 'inventory_service' });
    expect(db.get('payment-service')).toEqual({ ref: { name: 'shared-pg', key: 'uri' }, schema: 'payment_service' });
    const s = secrets(docs);
    expect(decode(s.get('orderflow-db-order-service')?.DATABASE_URL)).toBe('postgres://o:pw@orders-db:5432/orders');
    expect([...s.keys()].filter((n) => n.includes('-db-'))).toEqual(['orderflow-db-order-service']);
    expect(s.has('orderflow-secrets')).toBe(false); // shared URL comes from the user's Secret
  });

  it('every service on its own database: no shared URL needed, one Secret per URL, existingSecret wins over url', () => {
    const docs = render([
      GATEWAY,
      {
        database: {
          services: {
            orderService: { url: 'postgres://o@a:5432/o' },
            inventoryService: { url: 'postgres://i@b:5432/i' },
            paymentService: { url: 'postgres://p@c:5432/p', existingSecret: 'payments-pg' },
          },
        },
      },
    ]);
    const db = databaseOf(docs);
    expect(db.get('order-service')?.ref).toEqual({ name: 'orderflow-db-order-service', key: 'DATABASE_URL' });
    expect(db.get('inventory-service')?.ref).toEqual({ name: 'orderflow-db-inventory-service', key: 'DATABASE_URL' });
    expect(db.get('payment-service')?.ref).toEqual({ name: 'payments-pg', key: 'DATABASE_URL' });
    const s = secrets(docs);
    expect([...s.keys()].filter((n) => n.includes('-db-')).sort()).toEqual([
      'orderflow-db-inventory-service',
      'orderflow-db-order-service',
    ]);
    expect(decode(s.get('orderflow-db-inventory-service')?.DATABASE_URL)).toBe('postgres://i@b:5432/i');
  });

  it('refuses a service left without any database, naming it', () => {
    const msg = renderFailure([
      GATEWAY,
      { database: { services: { orderService: { url: 'postgres://o@a:5432/o' }, inventoryService: { url: 'postgres://i@b:5432/i' } } } },
    ]);
    expect(msg).toMatch(/database.services.paymentService.url or .existingSecret \(payment-service's own database\)/);
  });

  it('a disabled service needs no database and gets no Secret', () => {
    const docs = render([
      { sandboxGateway: { enabled: true } },
      {
        paymentService: { enabled: false },
        database: {
          services: {
            orderService: { url: 'postgres://o@a:5432/o' },
            inventoryService: { existingSecret: 'inv' },
            paymentService: { url: 'postgres://p@c:5432/p' },
          },
        },
      },
    ]);
    expect(databaseOf(docs).has('payment-service')).toBe(false);
    expect(secrets(docs).has('orderflow-db-payment-service')).toBe(false);
  });
});
