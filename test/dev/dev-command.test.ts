import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  launchProcess,
  processAlive as alive,
  removeTestNamespace,
  TEST_NATS_URL,
  testNamespace,
  testNats,
  waitFor,
  type LaunchedProcess,
} from '@orderflow/kit/testing';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ns = testNamespace('dev');
const dataRoot = mkdtempSync(join(tmpdir(), 'orderflow-dev-'));
const PORTS: Record<string, number> = {
  'order-service': 3001,
  'inventory-service': 3002,
  'payment-service': 3003,
  'sandbox-gateway': 3004,
  console: 3005,
};

interface DevLine {
  msg: string;
  child?: string;
  pid?: number;
  code?: number | null;
  signal?: string | null;
  restarts?: number;
  restartInMs?: number;
}

/** Who listens on a loopback TCP port, as the kernel says (not as the dev runner says). */
function listenerPid(port: number): number | undefined {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

// The README's first command: `npm run dev` is `npm run build && node scripts/dev.mjs` (the build
// already ran before the suite), so this runs scripts/dev.mjs as the terminal would: the whole
// platform on embedded PGlite and the machine's NATS (isolated here by a namespace and a
// temporary data directory), on the fixed ports from shared/README.md. Ctrl-C is SIGINT to the
// process group, as a terminal sends it. (npm itself reports a SIGINT'ed script as signalled, so
// the exit code checked is the dev script's.) One dev runner for the whole file: the ports are fixed.
describe.sequential('npm run dev', () => {
  let dev: LaunchedProcess;
  let exited: Promise<number | null>;
  const out = () => dev.output(Infinity);
  const lines = (): DevLine[] => dev.logs().filter((l) => l.service === 'dev') as unknown as DevLine[];
  /** The newest pid the runner reports for each child. */
  const pids = (): Record<string, number> =>
    Object.fromEntries(
      lines()
        .filter((l) => l.msg === 'child.started')
        .map((l) => [l.child!, l.pid!]),
    );
  const placeOrder = async (customerId: string): Promise<string> => {
    const r = await fetch('http://127.0.0.1:3001/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId, items: [{ productId: 'sku-1', quantity: 1 }] }),
    });
    expect(r.status).toBe(202);
    return ((await r.json()) as { orderId: string }).orderId;
  };
  const confirmed = (orderId: string) =>
    waitFor(
      `order ${orderId} confirmed`,
      async () => ((await (await fetch(`http://127.0.0.1:3001/orders/${orderId}`)).json()) as { status: string }).status === 'confirmed',
      30_000,
      100,
    );

  beforeAll(async () => {
    dev = await launchProcess({
      name: 'npm run dev',
      args: ['scripts/dev.mjs'],
      cwd: ROOT,
      detached: true,
      // The suite's NATS (the one cleanup talks to), not whatever answers on 4222.
      env: { NATS_URL: TEST_NATS_URL, ORDERFLOW_NAMESPACE: ns, ORDERFLOW_DATA_ROOT: dataRoot, LOG_LEVEL: 'warn', DATABASE_URL: '' },
      keepLines: 100_000,
      ready: (p) => p.output(Infinity).includes('orderflow is up'),
      readyTimeoutMs: 120_000,
      readyEveryMs: 250,
    });
    exited = dev.exited.then((e) => e.code);
  }, 150_000);

  afterAll(async () => {
    // Whatever happened above, nothing the runner started outlives the file.
    const started = dev ? Object.values(pids()) : [];
    await dev?.stop({ signal: 'SIGKILL' });
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await removeTestNamespace(await testNats(), ns);
    rmSync(dataRoot, { recursive: true, force: true });
  });

  test('starts the platform; an order confirms on :3001', async () => {
    await confirmed(await placeOrder('dev-smoke'));
  });

  test('a service killed with -9 comes back after a backoff, with one crash line; the others keep running', async () => {
    const before = pids();
    for (const [child, port] of Object.entries(PORTS)) expect(listenerPid(port), `${child} listens on ${port}`).toBe(before[child]);
    const victim = before['payment-service']!;
    process.kill(victim, 'SIGKILL');

    const crash = await waitFor('crash line', () => lines().find((l) => l.msg === 'child.crashed' && l.pid === victim), 10_000, 50);
    expect(crash).toMatchObject({ child: 'payment-service', signal: 'SIGKILL', code: null, restarts: 1 });
    expect(crash.restartInMs).toBeGreaterThan(0);
    // The kernel's word for it: a new process owns :3003, and it is ready (NATS and its database).
    const next = await waitFor(
      'payment-service listening again',
      () => {
        const pid = listenerPid(PORTS['payment-service']!);
        return pid !== undefined && pid !== victim ? pid : undefined;
      },
      30_000,
      100,
    );
    expect(pids()['payment-service']).toBe(next);
    await waitFor('payment-service ready', async () => (await fetch('http://127.0.0.1:3003/ready')).ok, 30_000, 100);

    // Untouched: same processes on the same ports, no crash reported for them, still answering.
    expect(
      lines()
        .filter((l) => l.msg === 'child.crashed')
        .map((l) => l.child),
    ).toEqual(['payment-service']);
    for (const [child, port] of Object.entries(PORTS)) {
      if (child === 'payment-service') continue;
      expect(listenerPid(port), `${child} still the same process`).toBe(before[child]);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status, `${child} /health`).toBe(200);
    }
    // And the saga goes through the restarted service.
    await confirmed(await placeOrder('dev-after-crash'));
  });

  test('Ctrl-C stops every child and exits 0', async () => {
    const started = Object.values(pids());
    process.kill(-dev.proc.pid!, 'SIGINT');
    expect(await exited, out().slice(-3000)).toBe(0);
    expect(started.filter(alive)).toEqual([]);
    expect(
      lines()
        .filter((l) => l.msg === 'child.crashed')
        .map((l) => l.child),
    ).toEqual(['payment-service']);
  }, 60_000);
});
