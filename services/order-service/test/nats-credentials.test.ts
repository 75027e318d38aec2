import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, test } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { makeEvent, Names, startService, type RunningService } from '@orderflow/kit';
import { freePort, readStream, testDbEnv, testNamespace, TestNatsServer, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

// NATS rejects the service's credentials for good (a rotated password): nats.js closes the
// connection after two rejected reconnects. A private nats-server with a config file stands in for
// the rotation: restarted with a new password while the service still holds the old one.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

async function authServer(): Promise<{
  nats: TestNatsServer;
  dir: string;
  rotate(password: string): Promise<void>;
  passwordFile: string;
  url: string;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'orderflow-natsauth-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const conf = join(dir, 'nats.conf');
  const writeConf = (password: string) => writeFileSync(conf, `authorization { users = [ { user: order, password: "${password}" } ] }\n`);
  writeConf('first-secret');
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, 'first-secret\n');
  const nats = await TestNatsServer.create({ args: ['-c', conf] });
  cleanups.push(() => nats.dispose());
  await nats.start();
  return {
    nats,
    dir,
    passwordFile,
    url: nats.url,
    async rotate(password) {
      writeConf(password);
      await nats.stop();
      await nats.start();
    },
  };
}

const health = async (url: string) => {
  const r = await fetch(`${url}/health`);
  return { status: r.status, body: (await r.json()) as { status: string; reason?: string } };
};

test(
  'credentials rejected for good: /health says so, the connection is rebuilt with the password re-read from ' +
    'its file, relay and consumers use it',
  async () => {
    const auth = await authServer();
    const ns = testNamespace('natsauth');
    const db = await testDbEnv('postgres', 'natsauth');
    cleanups.push(() => db.cleanup());
    const svc: RunningService = await startService(orderService(), {
      env: {
        PORT: '0',
        NATS_URL: auth.url,
        NATS_USER: 'order',
        NATS_PASSWORD_FILE: auth.passwordFile,
        NATS_REBUILD_TIMEOUT_MS: '0',
        ORDERFLOW_NAMESPACE: ns,
        LOG_LEVEL: 'silent',
        ...db.env,
      },
    });
    cleanups.push(() => svc.stop());
    await waitFor('ready', async () => (await fetch(`${svc.url}/ready`)).ok, 30_000);

    await auth.rotate('second-secret');
    // The password file still holds the old secret: every reconnect and rebuild is refused.
    await waitFor(
      '/health 503 naming the closed connection',
      async () => {
        const h = await health(svc.url);
        return h.status === 503 && /closed for good/.test(h.body.reason ?? '');
      },
      30_000,
    );
    const ready = await fetch(`${svc.url}/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { down: Record<string, string> }).down.nats).toMatch(/closed for good/);
    // Orders are still taken (outbox): NATS being away is not the request's problem.
    const r = await fetch(`${svc.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'rotated', items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    const { orderId } = (await r.json()) as { orderId: string };

    // The secret is rotated in the mounted file too: the next rebuild reads it.
    writeFileSync(auth.passwordFile, 'second-secret\n');
    await waitFor('/health 200 again', async () => (await health(svc.url)).status === 200, 30_000);
    await waitFor('ready again', async () => (await fetch(`${svc.url}/ready`)).ok, 30_000);

    const nc: NatsConnection = await connect({ servers: auth.url, user: 'order', pass: 'second-secret' });
    cleanups.push(() => nc.close());
    // The relay publishes on the rebuilt connection.
    await waitFor(
      'orders.created on the rebuilt connection',
      async () => (await readStream(nc, `${ns.toUpperCase()}_ORDERS`)).some((m) => (m.json as { orderId?: string }).orderId === orderId),
      30_000,
    );
    // The consumers handle events on it: an inventory rejection cancels the order.
    const names = new Names(ns);
    const e = makeEvent(names, 'inventory.rejected', {
      version: 'v1',
      orderId,
      correlationId: 'rotated',
      occurredAt: new Date().toISOString(),
      reason: 'out_of_stock',
      shortages: [{ productId: 'sku-1', requested: 1, available: 0 }],
    });
    const h = natsHeaders();
    for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
    await jetstream(nc).publish(e.subject, e.payload, { headers: h });
    await waitFor(
      'the order cancelled by the consumer',
      async () => {
        const o = (await (await fetch(`${svc.url}/orders/${orderId}`)).json()) as { status: string };
        return o.status === 'cancelled';
      },
      30_000,
    );
  },
);

test(
  'credentials rejected for good and never fixed: the process exits non-zero after NATS_REBUILD_TIMEOUT_MS, ' + '/health 503 until then',
  async () => {
    const auth = await authServer();
    const ns = testNamespace('natsexit');
    const db = await testDbEnv('postgres', 'natsexit');
    cleanups.push(() => db.cleanup());
    const port = await freePort();
    const output: string[] = [];
    const child = spawn(process.execPath, ['services/order-service/dist/main.js'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        NATS_URL: auth.url,
        NATS_USER: 'order',
        NATS_PASSWORD_FILE: auth.passwordFile,
        NATS_REBUILD_TIMEOUT_MS: '8000',
        ORDERFLOW_NAMESPACE: ns,
        LOG_LEVEL: 'info',
        ...db.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(() => (child.exitCode === null ? child.kill('SIGKILL') : undefined));
    child.stdout.on('data', (b: Buffer) => output.push(b.toString()));
    child.stderr.on('data', (b: Buffer) => output.push(b.toString()));
    const url = `http://127.0.0.1:${port}`;
    await waitFor('child ready', async () => (await fetch(`${url}/ready`)).ok, 30_000, 100);

    await auth.rotate('second-secret');
    await waitFor('/health 503 while rebuilding', async () => (await health(url)).status === 503, 8_000, 50);
    expect(await exited).toBe(1);
    const lines = output
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l) as { msg?: string; err?: { message?: string } };
        } catch {
          return {};
        }
      });
    const last = lines.find((l) => l.msg === 'service.unrecoverable_exiting');
    expect(last?.err?.message).toMatch(/closed for good and not rebuilt/);
  },
);
