import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ns = testNamespace('dev');
const dataRoot = mkdtempSync(join(tmpdir(), 'orderflow-dev-'));

afterAll(async () => {
  const nc = await testNats();
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
  rmSync(dataRoot, { recursive: true, force: true });
});

// The README's first command: `npm run dev` is `npm run build && node scripts/dev.mjs` (the build
// already ran before the suite), so this runs scripts/dev.mjs as the terminal would: the whole
// platform on embedded PGlite and the machine's NATS (isolated here by a namespace and a
// temporary data directory), on the fixed ports from shared/README.md. Ctrl-C is SIGINT to the
// process group, as a terminal sends it. (npm itself reports a SIGINT'ed script as signalled, so
// the exit code checked is the dev script's.)
test('the dev command starts the platform, an order confirms on :3001, Ctrl-C exits 0', async () => {
  const proc = spawn(process.execPath, ['scripts/dev.mjs'], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, ORDERFLOW_NAMESPACE: ns, ORDERFLOW_DATA_ROOT: dataRoot, LOG_LEVEL: 'warn', DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  try {
    await waitFor('platform up', () => out.includes('orderflow is up'), 120_000, 250);
    const r = await fetch('http://127.0.0.1:3001/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'dev-smoke', items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    const { orderId } = (await r.json()) as { orderId: string };
    await waitFor('order confirmed', async () => ((await (await fetch(`http://127.0.0.1:3001/orders/${orderId}`)).json()) as { status: string }).status === 'confirmed', 30_000);
  } finally {
    process.kill(-proc.pid!, 'SIGINT');
  }
  expect(await exited, out.slice(-3000)).toBe(0);
}, 180_000);
