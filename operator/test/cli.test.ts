/** The `orderflow` CLI as a child process against the real nats-server (namespaced names). */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { NatsConnection } from '@nats-io/transport-node';
import { platformTopology } from '@orderflow/kit';
import { deleteNamespaceStreams, testNamespace, testNats } from '@orderflow/kit/testing';

const run = promisify(execFile);
const ns = testNamespace('cli');
const topo = platformTopology({ namespace: ns });
const dir = mkdtempSync(join(tmpdir(), 'orderflow-cli-'));
const CLI = new URL('../src/cli/main.ts', import.meta.url).pathname;
let nc: NatsConnection;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', '--conditions', 'development', CLI, ...args], { env: { ...process.env } });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

beforeAll(async () => {
  nc = await testNats();
  const doc = (kind: string, name: string, spec: unknown) => stringify({ apiVersion: 'jetstream.orderflow.dev/v1alpha1', kind, metadata: { name }, spec });
  writeFileSync(join(dir, 'streams.yaml'), topo.streams.map((s) => doc('Stream', s.name.toLowerCase(), s)).join('---\n'));
  writeFileSync(join(dir, 'consumers.yaml'), topo.consumers.map((c) => doc('Consumer', c.durableName, c)).join('---\n'));
});
afterAll(async () => {
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

describe('orderflow CLI', () => {
  it('streams apply -f <dir> creates, a second apply changes nothing; status and dlq list answer', async () => {
    const first = await cli('streams', 'apply', '-f', dir);
    expect(first.code, first.err).toBe(0);
    expect(first.out.match(/ created/g)).toHaveLength(10);
    const second = await cli('streams', 'apply', '-f', dir);
    expect(second.out.match(/ unchanged/g)).toHaveLength(10);
    const status = await cli('streams', 'status');
    expect(status.out).toContain(`${ns.toUpperCase()}_ORDERS`);
    const list = await cli('dlq', 'list', '--dlq-stream', `${ns.toUpperCase()}_DLQ`);
    expect(list.out).toContain('no dead letters');
    const bad = await cli('dlq', 'show', 'abc');
    expect(bad.code).toBe(2);
  });
});
