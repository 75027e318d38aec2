/**
 * The console's API on the real NATS of this machine, its own namespace: what is away answers 503
 * problem+json with Retry-After (streams not created yet, order-service unreachable) rather than
 * 500, bad requests 400/404 as problems; and the audit line of a dead-letter action names the
 * client by the kit's one rule — a spoofed X-Forwarded-For from an untrusted peer is ignored, one
 * from a trusted proxy (TRUSTED_PROXIES) is used.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createLogger, Names } from '@orderflow/kit';
import { deleteNamespaceStreams, TEST_NATS_URL, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { startConsole, type RunningConsole } from '../src/index.js';

interface Problem {
  status: number;
  detail: string;
  dependency?: string;
}

/** A console on its own namespace whose audit lines the test can read. */
async function consoleWith(namespace: string, env: Record<string, string>) {
  const audit: Array<Record<string, unknown>> = [];
  const sink = {
    write(line: string) {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.audit) audit.push(j);
    },
  };
  const con = await startConsole({
    hostname: '127.0.0.1',
    log: createLogger('console', 'info', sink),
    // Port 9 (discard) on loopback: nothing listens, order-service is "unreachable".
    env: {
      PORT: '0',
      NATS_URL: TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: namespace,
      ORDER_SERVICE_URL: 'http://127.0.0.1:9',
      HTTP_RETRY_AFTER_SECONDS: '3',
      ...env,
    },
  });
  await waitFor('console ready', async () => (await fetch(`${con.url}/ready`)).ok, 15_000);
  return { con, audit };
}

async function problemOf(r: Response): Promise<Problem> {
  expect(r.headers.get('content-type')).toContain('application/problem+json');
  return (await r.json()) as Problem;
}

describe('console API errors', () => {
  const ns = testNamespace('conerr');
  let con: RunningConsole;

  beforeAll(async () => {
    ({ con } = await consoleWith(ns, {}));
  });
  afterAll(async () => {
    await con?.stop();
  });

  test.each(['/api/dlq', '/api/dlq/1'])('%s before the platform created its streams: 503 with Retry-After, not 500', async (path) => {
    const r = await fetch(`${con.url}${path}`);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('3');
    expect(await problemOf(r)).toMatchObject({ status: 503, dependency: 'nats' });
  });

  test('order lookup while order-service does not answer: 503 with Retry-After naming it', async () => {
    const r = await fetch(`${con.url}/api/orders/lookup?q=some-correlation-id`);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('3');
    const p = await problemOf(r);
    expect(p).toMatchObject({ status: 503, dependency: 'order-service' });
    expect(p.detail).toContain('order-service did not answer');
  });

  test('bad requests are problems too: 400 for a bad sequence or query, 404 for an unknown route or asset', async () => {
    for (const [method, path, status] of [
      ['GET', '/api/dlq/0', 400],
      ['POST', '/api/dlq/x/replay', 400],
      ['POST', '/api/dlq/1/discard', 400],
      ['GET', '/api/orders/lookup', 400],
      ['GET', '/api/nope', 404],
      ['GET', '/assets/nope.js', 404],
      ['GET', '/assets/../server.js', 404],
    ] as const) {
      const r = await fetch(`${con.url}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(status);
      expect((await problemOf(r)).status).toBe(status);
    }
  });
});

describe('audit log: who asked, by the one client-address rule', () => {
  const ns = testNamespace('conaud');
  const names = new Names(ns);
  let nc: NatsConnection;
  const consoles: RunningConsole[] = [];

  beforeAll(async () => {
    nc = await testNats();
    // Only the DLQ stream: enough for a discard to find nothing and say so in its audit line.
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: names.stream('DLQ'), subjects: [names.subject('dlq.>')] });
  });
  afterAll(async () => {
    for (const c of consoles) await c.stop();
    if (nc) {
      await deleteNamespaceStreams(nc, ns);
      await nc.close();
    }
  });

  async function discardAudited(env: Record<string, string>, forwardedFor: string): Promise<Record<string, unknown>> {
    const { con, audit } = await consoleWith(ns, env);
    consoles.push(con);
    const r = await fetch(`${con.url}/api/dlq/424242/discard`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ confirm: true }),
    });
    expect(r.status).toBe(404);
    return waitFor('audit line', () => audit.find((a) => a.action === 'dlq.discard'));
  }

  test('a spoofed X-Forwarded-For from an untrusted peer is ignored: the TCP peer is recorded', async () => {
    const line = await discardAudited({}, '203.0.113.66');
    expect(line).toMatchObject({ action: 'dlq.discard', ok: false, seq: 424242 });
    expect(line.actor).toMatchObject({ auth: 'anonymous', ip: '127.0.0.1' });
  });

  test('behind a trusted proxy the client it forwarded is recorded (not what the client wrote before it)', async () => {
    const line = await discardAudited({ TRUSTED_PROXIES: '127.0.0.0/8' }, '6.6.6.6, 198.51.100.23');
    expect(line).toMatchObject({ actor: { ip: '198.51.100.23' } });
  });
});
