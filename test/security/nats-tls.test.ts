/**
 * TLS to NATS by configuration only (NATS_TLS_CA / NATS_TLS_CERT / NATS_TLS_KEY), against a
 * nats-server that requires TLS and verifies client certificates, with a throw-away CA made by
 * openssl (the kit's makeTestTlsSet). A service with the CA and its client certificate connects
 * and publishes; one without a client certificate, or trusting another CA, never becomes ready.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger, startService, type RunningService } from '@orderflow/kit';
import {
  dropSchema,
  makeTestCa,
  makeTestTlsSet,
  natsMutualTlsArgs,
  TEST_DATABASE_URL,
  TestNatsServer,
  testNamespace,
  waitFor,
} from '@orderflow/kit/testing';
import { orderService } from '../../services/order-service/src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'orderflow-tls-'));
const f = (n: string) => join(dir, n);

describe('NATS over TLS with client certificates', () => {
  let server: TestNatsServer;
  const ns = testNamespace('tls');
  const started: RunningService[] = [];
  const schemas: string[] = [];

  /** Each service's own log lines (warn and up), parsed: what it says it tried. */
  const logs = new Map<RunningService, Array<{ msg: string; err?: string }>>();
  const start = async (tls: Record<string, string>): Promise<RunningService> => {
    const schema = `${ns}_${schemas.length}`;
    schemas.push(schema);
    const lines: Array<{ msg: string; err?: string }> = [];
    const svc = await startService(orderService(), {
      hostname: '127.0.0.1',
      log: createLogger('order-service', 'warn', { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string; err?: string }) }),
      env: { PORT: '0', NATS_URL: server.url, ORDERFLOW_NAMESPACE: ns, DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema, ...tls },
    });
    logs.set(svc, lines);
    started.push(svc);
    return svc;
  };

  beforeAll(async () => {
    makeTestTlsSet(dir);
    // A CA the server does not trust: a service trusting only it must not connect.
    makeTestCa(dir, 'other-ca');
    server = await TestNatsServer.create({
      name: 'tls-test',
      args: ['-l', f('nats.log'), ...natsMutualTlsArgs(dir)],
    });
    await server.start();
  }, 60_000);
  afterAll(async () => {
    for (const s of started) await s.stop().catch(() => undefined);
    await server?.dispose();
    for (const s of schemas) await dropSchema(s);
    rmSync(dir, { recursive: true, force: true });
  });

  test('with the CA and a client certificate from env: ready, and an order reaches the stream', async () => {
    const svc = await start({ NATS_TLS_CA: f('ca.pem'), NATS_TLS_CERT: f('client.pem'), NATS_TLS_KEY: f('client.key') });
    await waitFor('ready over TLS', async () => (await fetch(`${svc.url}/ready`)).ok, 20_000, 100);
    const r = await fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'tls', items: [{ productId: 'tls-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    const nc = await connect({ servers: server.url, tls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') } });
    try {
      const jsm = await jetstreamManager(nc);
      await waitFor(
        'orders.created stored',
        async () => (await jsm.streams.info(`${ns.toUpperCase()}_ORDERS`)).state.messages === 1,
        10_000,
        100,
      );
      // The streams live and die with this test's own nats-server.
    } finally {
      await nc.close();
    }
  });

  test('without a client certificate, or trusting another CA: never ready', async () => {
    const noCert = await start({ NATS_TLS_CA: f('ca.pem') });
    const wrongCa = await start({ NATS_TLS_CA: f('other-ca.pem'), NATS_TLS_CERT: f('client.pem'), NATS_TLS_KEY: f('client.key') });
    // The facts to wait on: each one tried the TLS server and was turned away — the server
    // refused the one without a certificate, the other refused the server's certificate.
    const failures = (s: RunningService) => logs.get(s)!.filter((l) => l.msg === 'nats.connect_failed');
    await waitFor(
      'the server refused a client without a certificate',
      () =>
        readFileSync(f('nats.log'), 'utf8').includes("TLS handshake error: tls: client didn't provide a certificate") &&
        failures(noCert).length > 0,
      20_000,
      50,
    );
    await waitFor(
      'the client refused a server signed by another CA',
      () => failures(wrongCa).some((l) => /unable to verify the first certificate/.test(l.err ?? '')),
      20_000,
      50,
    );
    for (const s of [noCert, wrongCa]) {
      const ready = await fetch(`${s.url}/ready`);
      expect(ready.status).toBe(503);
      expect(JSON.stringify(await ready.json())).toMatch(/nats/);
    }
  });
});
