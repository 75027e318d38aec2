/**
 * The `orderflow` CLI as a child process against the real nats-server (namespaced names): apply,
 * diff (the plan without applying), and the NATS settings the services read (a password-protected
 * server of its own).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { readStream } from '@orderflow/kit';
import { platformTopology } from '../../test/support/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats, TestNatsServer, TEST_NATS_URL } from '@orderflow/kit/testing';

const run = promisify(execFile);
const ns = testNamespace('cli');
const topo = platformTopology({ namespace: ns });
const dir = mkdtempSync(join(tmpdir(), 'orderflow-cli-'));
const CLI = new URL('../src/cli/main.ts', import.meta.url).pathname;
let nc: NatsConnection;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return cliWith({}, ...args);
}

async function cliWith(env: Record<string, string>, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', '--conditions', 'development', CLI, ...args], {
      env: { ...process.env, NATS_URL: TEST_NATS_URL, ...env },
    });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

beforeAll(async () => {
  nc = await testNats();
  const doc = (kind: string, name: string, spec: unknown) =>
    stringify({ apiVersion: 'jetstream.orderflow.dev/v1alpha1', kind, metadata: { name }, spec });
  writeFileSync(join(dir, 'streams.yaml'), topo.streams.map((s) => doc('Stream', s.name.toLowerCase(), s)).join('---\n'));
  writeFileSync(join(dir, 'consumers.yaml'), topo.consumers.map((c) => doc('Consumer', c.durableName, c)).join('---\n'));
});
afterAll(async () => {
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
  rmSync(dir, { recursive: true, force: true });
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

  it('diff -f <dir> prints the plan and applies nothing: exit 0 in sync, 1 when JetStream differs, 2 for trouble', async () => {
    const ORDERS = `${ns.toUpperCase()}_ORDERS`;
    // The apply above made everything: in sync.
    const same = await cli('diff', '-f', dir);
    expect(same.code, same.err).toBe(0);
    expect(same.out.match(/ in sync/g)).toHaveLength(10);

    // The YAML changes: the diff names the field, JetStream stays as it was.
    const jsm = await jetstreamManager(nc);
    const before = (await readStream(jsm, ORDERS))!.config;
    const changed = mkdtempSync(join(tmpdir(), 'orderflow-cli-diff-'));
    try {
      const streams = parseAllDocuments(readFileSync(join(dir, 'streams.yaml'), 'utf8')).map(
        (d) => d.toJS() as { spec: { name: string; maxAge?: string } },
      );
      for (const s of streams) if (s.spec.name === ORDERS) s.spec.maxAge = '3h';
      writeFileSync(join(changed, 'streams.yaml'), streams.map((s) => stringify(s)).join('---\n'));
      writeFileSync(
        join(changed, 'extra.yaml'),
        stringify({
          apiVersion: 'jetstream.orderflow.dev/v1beta1',
          kind: 'Stream',
          metadata: { name: 'new' },
          // The operator's NatsConnection reference: the CLI says it has only its own NATS.
          spec: { name: `${ns.toUpperCase()}_NEW`, subjects: [`${ns}.new.>`], connection: 'elsewhere' },
        }),
      );
      const d = await cli('diff', '-f', changed);
      expect(d.code, d.err).toBe(1);
      expect(d.out).toMatch(new RegExp(`Stream +${ORDERS} +would update`));
      expect(d.out).toMatch(/max_age.*3h|maxAge.*3h/);
      expect(d.out).toMatch(new RegExp(`Stream +${ns.toUpperCase()}_NEW +would create`));
      expect(d.err).toMatch(/^note: spec\.connection is the operator's; the CLI plans and applies these to .*: Stream new → elsewhere$/m);
      expect(same.err).not.toContain('spec.connection');
      expect((await readStream(jsm, ORDERS))!.config).toEqual(before);
      expect(await readStream(jsm, `${ns.toUpperCase()}_NEW`)).toBeUndefined();
    } finally {
      rmSync(changed, { recursive: true, force: true });
    }
    const trouble = await cliWith({ NATS_URL: 'nats://127.0.0.1:1' }, 'diff', '-f', dir);
    expect(trouble.code).toBe(2);
    expect(trouble.err).toContain('cannot connect to NATS at nats://127.0.0.1:1');
  });

  it('reads the NATS settings the services read: user and password from a file, against a server that requires them', async () => {
    const server = await TestNatsServer.create({ args: ['--user', 'ops', '--pass', 's3cret'] });
    await server.start();
    const pw = join(dir, 'nats-password');
    writeFileSync(pw, 's3cret\n');
    try {
      const refused = await cliWith({ NATS_URL: server.url }, 'streams', 'status');
      expect(refused.code).not.toBe(0);
      expect(refused.err).toMatch(/authorization/i);
      const ok = await cliWith({ NATS_URL: server.url, NATS_USER: 'ops', NATS_PASSWORD_FILE: pw }, 'streams', 'apply', '-f', dir);
      expect(ok.code, ok.err).toBe(0);
      expect(ok.out.match(/ created/g)).toHaveLength(10);
    } finally {
      await server.dispose();
    }
  });
});
