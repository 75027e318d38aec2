/**
 * The `orderflow` CLI with KeyValue and ObjectStore YAML, as a child process against the real
 * nats-server: diff shows the plan and applies nothing, apply creates buckets Kvm/Objm open, streams
 * status shows them as buckets with their live numbers, a change is applied in place, a fixed field
 * is refused naming it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { deleteBucket, readBucket } from '@orderflow/kit';
import { testNamespace, testNats, TEST_NATS_URL } from '@orderflow/kit/testing';

const run = promisify(execFile);
const ns = testNamespace('clib');
const dir = mkdtempSync(join(tmpdir(), 'orderflow-cli-buckets-'));
const CLI = new URL('../src/cli/main.ts', import.meta.url).pathname;
const KV = `${ns}_settings`;
const OS = `${ns}_blobs`;
let nc: NatsConnection;
let jsm: JetStreamManager;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', '--conditions', 'development', CLI, ...args], {
      env: { ...process.env, NATS_URL: TEST_NATS_URL },
    });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

function write(kv: Record<string, unknown>): void {
  const doc = (kind: string, name: string, spec: unknown) =>
    stringify({ apiVersion: 'jetstream.orderflow.dev/v1beta1', kind, metadata: { name }, spec });
  writeFileSync(
    join(dir, 'buckets.yaml'),
    [doc('KeyValue', 'settings', { bucket: KV, ...kv }), doc('ObjectStore', 'blobs', { bucket: OS, ttl: '24h' })].join('---\n'),
  );
}

beforeAll(async () => {
  nc = await testNats();
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await deleteBucket(jsm, 'KeyValue', KV);
  await deleteBucket(jsm, 'ObjectStore', OS);
  await nc.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('orderflow CLI with KeyValue and ObjectStore', () => {
  it('diff, apply, diff again; a change in place; a fixed field refused naming it', async () => {
    write({ history: 2, ttl: '1h' });
    const before = await cli('diff', '-f', dir);
    expect(before.code, before.err).toBe(1);
    expect(before.out).toMatch(new RegExp(`KeyValue ${KV}\\s+would create`));
    expect(before.out).toMatch(new RegExp(`ObjectStore ${OS}\\s+would create`));
    expect(await readBucket(jsm, 'KeyValue', KV)).toBeUndefined();

    const applied = await cli('streams', 'apply', '-f', dir);
    expect(applied.code, applied.err + applied.out).toBe(0);
    expect(applied.out.match(/ created/g)).toHaveLength(2);
    const inSync = await cli('diff', '-f', dir);
    expect(inSync.code, inSync.out).toBe(0);
    const kv = await new Kvm(nc).open(KV);
    await kv.put('feature', new TextEncoder().encode('on'));
    expect((await kv.get('feature'))?.string()).toBe('on');
    await (await new Objm(nc).open(OS)).putBlob({ name: 'b' }, new TextEncoder().encode('x'));
    // streams status shows the buckets as buckets, with their live numbers — not as KV_/OBJ_ streams.
    const status = await cli('streams', 'status');
    expect(status.code, status.err).toBe(0);
    expect(status.out).toMatch(new RegExp(`^KeyValue +${KV} +values=1 +history=2 +bytes=[1-9]\\d* +ttl=3600s$`, 'm'));
    expect(status.out).toMatch(new RegExp(`^ObjectStore +${OS} +bytes=[1-9]\\d* +messages=2 +ttl=86400s +sealed=false$`, 'm'));
    expect(status.out).not.toMatch(new RegExp(`^(KV_${KV}|OBJ_${OS}) `, 'm'));
    expect(status.out.indexOf(`KeyValue     ${KV}`)).toBeGreaterThan(status.out.indexOf('buckets:'));

    write({ history: 4, ttl: '1h' });
    const changed = await cli('diff', '-f', dir);
    expect(changed.code).toBe(1);
    expect(changed.out).toContain('history (max_msgs_per_subject): 2 → 4');
    const updated = await cli('streams', 'apply', '-f', dir);
    expect(updated.code, updated.out).toBe(0);
    expect(updated.out).toMatch(/KeyValue .* updated: history \(max_msgs_per_subject\): 2 → 4/);
    expect((await readBucket(jsm, 'KeyValue', KV))?.config.max_msgs_per_subject).toBe(4);

    write({ history: 4, ttl: '1h', storage: 'memory' });
    const refused = await cli('streams', 'apply', '-f', dir);
    expect(refused.code).toBe(1);
    expect(refused.out).toMatch(/KeyValue .* refused: storage: "file" → "memory" cannot be changed in place/);
    expect((await readBucket(jsm, 'KeyValue', KV))?.config.storage).toBe('file');
  });
});
