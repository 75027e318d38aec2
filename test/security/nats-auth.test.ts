/**
 * NATS authorisation with one user per service (test/support/nats-auth.ts) on a dedicated
 * nats-server: the saga works end to end with those users, and a service cannot do what it has
 * no business doing — inventory publishing payments.completed, deleting a stream, reading another
 * service's durable — nor can anyone connect without credentials.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyTopology, createLogger, problems } from '@orderflow/kit';
import { freePort, TestNatsServer } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';
import { natsAuthConfig } from '../support/nats-auth.js';
import { platformTopology, type ServiceName } from '../support/topology.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pw = () => randomBytes(12).toString('hex');

describe('NATS users per service', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-auth-'));
  const passwords: Record<ServiceName | 'admin', string> = {
    admin: pw(),
    'order-service': pw(),
    'inventory-service': pw(),
    'payment-service': pw(),
  };
  let server: TestNatsServer;
  let p: Platform;
  const as = (user: ServiceName | 'admin'): Promise<NatsConnection> =>
    connect({ servers: server.url, user, pass: passwords[user], name: `auth-test-${user}` });

  beforeAll(async () => {
    const port = await freePort();
    p = new Platform({
      natsUrl: `nats://127.0.0.1:${port}`,
      // The operator's job in Kubernetes: services get no stream-management rights.
      env: { ENSURE_STREAMS: 'false' },
      serviceEnv: Object.fromEntries(
        (['order-service', 'inventory-service', 'payment-service'] as const).map((s) => [s, { NATS_USER: s, NATS_PASSWORD: passwords[s] }]),
      ),
      natsConnect: () => as('admin'),
      logLevel: 'error',
    });
    const conf = join(dir, 'nats.conf');
    writeFileSync(conf, natsAuthConfig({ namespace: p.ns, passwords }));
    server = await TestNatsServer.create({ name: 'auth-test', port, args: ['-c', conf] });
    await server.start();
    const nc = await as('admin');
    const failed = problems(
      await applyTopology(await jetstreamManager(nc), platformTopology({ namespace: p.ns }), createLogger('auth-test', 'error')),
    );
    await nc.close();
    expect(failed).toEqual([]);
    await p.start();
    await p.setStock('auth-1', 10, 3);
  }, 60_000);
  afterAll(async () => {
    await p?.stop();
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the saga works with each service on its own user', async () => {
    const ok = await p.placeOrder('auth', [{ productId: 'auth-1', quantity: 2 }]);
    const declined = await p.placeOrder('auth', [{ productId: 'auth-1', quantity: 50 }]);
    const final = await p.waitFinal([ok.orderId!, declined.orderId!], 30_000);
    expect(final.get(ok.orderId!)?.status).toBe('confirmed');
    expect(final.get(declined.orderId!)).toMatchObject({ status: 'cancelled', reason: 'out_of_stock' });
    expect(await p.product('auth-1')).toMatchObject({ onHand: 8, reserved: 0 });
  });

  test('inventory cannot publish payments.completed: no ack, nothing stored', async () => {
    const nc = await as('inventory-service');
    const errors: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
    try {
      const js = jetstream(nc);
      const forged = JSON.stringify({
        version: 'v1',
        orderId: '00000000-0000-4000-8000-000000000001',
        correlationId: 'forged',
        occurredAt: new Date().toISOString(),
        paymentId: 'p',
        amount: 1,
        currency: 'USD',
      });
      await expect(js.publish(`${p.ns}.payments.completed`, forged, { msgID: 'forged-1', timeout: 2000 })).rejects.toThrow();
      // Its own subjects still work on the same connection.
      await expect(js.publish(`${p.ns}.inventory.released`, 'x', { msgID: `own-${p.ns}`, timeout: 5000 })).resolves.toMatchObject({
        duplicate: false,
      });
      const admin = await as('admin');
      const jsm = await jetstreamManager(admin);
      const info = await jsm.streams.info(`${p.ns.toUpperCase()}_PAYMENTS`, { subjects_filter: `${p.ns}.payments.completed` });
      const stored = await jsm.streams.getMessage(`${p.ns.toUpperCase()}_PAYMENTS`, { last_by_subj: `${p.ns}.payments.completed` });
      // The one payments.completed in the stream is the real one from the saga test, not the forgery.
      expect(info.state.subjects?.[`${p.ns}.payments.completed`]).toBe(1);
      expect(stored?.json<{ correlationId: string }>().correlationId).not.toBe('forged');
      await admin.close();
      expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "[^"]*payments\.completed"/i);
    } finally {
      await nc.close();
    }
  });

  test('a service can neither manage streams nor read another service’s durable', async () => {
    const nc = await as('inventory-service');
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2000 });
      await expect(jsm.streams.delete(`${p.ns.toUpperCase()}_PAYMENTS`)).rejects.toThrow();
      await expect(jsm.consumers.info(`${p.ns.toUpperCase()}_INVENTORY`, 'payment-inventory')).rejects.toThrow();
      // Its own durable is readable.
      await expect(jsm.consumers.info(`${p.ns.toUpperCase()}_ORDERS`, 'inventory-orders')).resolves.toMatchObject({
        name: 'inventory-orders',
      });
    } finally {
      await nc.close();
    }
    const admin = await as('admin');
    expect((await (await jetstreamManager(admin)).streams.info(`${p.ns.toUpperCase()}_PAYMENTS`)).config.name).toBe(
      `${p.ns.toUpperCase()}_PAYMENTS`,
    );
    await admin.close();
  });

  test('no credentials or a wrong password: no connection', async () => {
    await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow(/authorization/i);
    await expect(connect({ servers: server.url, user: 'payment-service', pass: 'wrong', reconnect: false })).rejects.toThrow(
      /authorization/i,
    );
  });

  test('the checked-in configs are the generator output (production naming)', () => {
    const want = natsAuthConfig();
    expect(readFileSync(join(ROOT, 'test/fixtures/nats-auth.conf'), 'utf8')).toBe(want);
    expect(readFileSync(join(ROOT, 'charts/orderflow/files/nats-auth.conf'), 'utf8')).toBe(want);
  });
});
