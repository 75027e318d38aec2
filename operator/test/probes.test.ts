/**
 * The built operator (operator/dist/main.js, as the image runs it) started while NATS is not
 * there: /health answers at once — a liveness probe must not kill a pod that is waiting out its
 * broker — and /ready is 503 naming nats until a nats-server appears on that address; then it is
 * ready (a standby: the Kubernetes API it is pointed at does not answer, so it never leads).
 * Needs `npx turbo run build` first.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, httpReady, launchProcess, TestNatsServer, waitFor, type LaunchedProcess } from '@orderflow/kit/testing';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
let proc: LaunchedProcess | undefined;
let server: TestNatsServer | undefined;
const dir = mkdtempSync(join(tmpdir(), 'operator-probes-'));

afterAll(async () => {
  await proc?.stop();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function readiness(port: number): Promise<{ status: number; down: Record<string, string> }> {
  const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) });
  return { status: res.status, down: ((await res.json()) as { down: Record<string, string> }).down };
}

describe('operator probes', () => {
  it('/health answers while NATS is away; /ready is 503 naming nats until it comes', async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run npx turbo run build first`);
    const [port, natsPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const url = `nats://127.0.0.1:${natsPort}`;
    // A Kubernetes API nobody answers on.
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${apiPort}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'none' } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    proc = await launchProcess({
      name: 'operator',
      args: [MAIN],
      inheritEnv: (k) => k === 'PATH' || k === 'HOME',
      env: { PORT: String(port), NATS_URL: url, KUBECONFIG: kubeconfig, LOG_LEVEL: 'info' },
      ready: httpReady(`http://127.0.0.1:${port}/health`),
    });
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    const r = await readiness(port);
    expect(r.status).toBe(503);
    expect(Object.keys(r.down)).toContain('nats');
    // Still alive and waiting: a NATS that is away is not a reason to exit.
    expect(proc.proc.exitCode).toBeNull();

    server = await TestNatsServer.create({ port: natsPort, name: 'probes' });
    await server.start();
    await waitFor('ready once NATS is there', async () => (await readiness(port)).status === 200, 30_000);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });
});
