/**
 * Ownership, preventUpdate, preventDelete and observe mode, on a REAL control plane and the suite's
 * current nats-server (metadata, hence markers, since 2.10): one object is managed by one resource,
 * a resource never deletes what it does not own, a pre-existing object is taken over only when the
 * resource asks (annotation), only a resource that will delete its object carries a finalizer, and
 * an observing operator writes nothing to JetStream. The CLI leaves an owned object to the operator.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Names, readStream } from '@orderflow/kit';
import { deleteNamespaceStreams, testNamespace, testNats, TEST_NATS_URL, waitFor } from '@orderflow/kit/testing';
import { startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { ADOPT_ANNOTATION, OWNER_KEY } from '../src/ownership.js';
import { API_VERSION, FINALIZER } from '../src/resources.js';
import { capturingLogger, cr, installCrds, kubeConfigFrom, kubectlApply, kubectlPatch, ready, reader } from './support/kube.js';
import { eventsFor, startTestOperator, type TestOperator } from './support/operator.js';

const run = promisify(execFile);
const ns = testNamespace('own');
const names = new Names(ns);
const K8S_NS = ns.replace(/_/g, '-');
const OBS_NS = `${K8S_NS}-observe`;
const HOUR = 3600e9;

let cp: ControlPlane;
let kc: KubeConfig;
let nc: NatsConnection;
let jsm: JetStreamManager;
let get: ReturnType<typeof reader>;
let manager: TestOperator | undefined;
let observer: TestOperator | undefined;
const { log } = capturingLogger();

const condition = async (kind: 'Stream' | 'Consumer', namespace: string, name: string, reason: string) =>
  waitFor(`${name} ${reason}`, async () => {
    const o = await get(kind, namespace, name);
    return ready(o)?.reason === reason ? o : undefined;
  });

beforeAll(async () => {
  cp = await startControlPlane({ name: 'ownership' });
  await installCrds(cp);
  await cp.kubectl(['create', 'namespace', K8S_NS]);
  await cp.kubectl(['create', 'namespace', OBS_NS]);
  kc = kubeConfigFrom(cp.kubeconfigPath);
  get = reader(kc);
  nc = await testNats();
  jsm = await jetstreamManager(nc);
  manager = await startTestOperator({ kc, nc, namespace: K8S_NS, log, identity: 'manager' });
  observer = await startTestOperator({ kc, nc, namespace: OBS_NS, log, identity: 'observer', mode: 'observe' });
  await waitFor(
    'both lead with synced caches',
    () => manager!.op.ready() && manager!.op.isLeader() && observer!.op.ready() && observer!.op.isLeader(),
    30_000,
  );
}, 180_000);

afterAll(async () => {
  await manager?.op.stop();
  await observer?.op.stop();
  await cp?.stop();
  if (nc) {
    await deleteNamespaceStreams(nc, ns);
    await nc.close();
  }
});

describe('ownership markers', () => {
  const SHARED = names.stream('SHARED');

  it('the creating resource marks the object; a second resource naming it is refused (OwnedElsewhere) and changes nothing', async () => {
    await kubectlApply(cp, K8S_NS, cr('Stream', 'first', { name: SHARED, subjects: [names.subject('shared.>')], maxAge: '1h' }));
    const first = await waitFor('first Ready', async () => {
      const o = await get('Stream', K8S_NS, 'first');
      return ready(o)?.status === 'True' ? o : undefined;
    });
    expect(first.metadata.finalizers).toContain(FINALIZER);
    expect((await readStream(jsm, SHARED))?.config.metadata?.[OWNER_KEY]).toBe(`${K8S_NS}/first`);

    await kubectlApply(cp, K8S_NS, cr('Stream', 'second', { name: SHARED, subjects: [names.subject('shared.>')], maxAge: '5h' }));
    const second = await condition('Stream', K8S_NS, 'second', 'OwnedElsewhere');
    expect(ready(second)).toMatchObject({ status: 'False' });
    expect(ready(second)?.message).toContain(`belongs to the resource ${K8S_NS}/first`);
    // No finalizer: it will never delete what is not its own.
    expect(second.metadata.finalizers ?? []).not.toContain(FINALIZER);
    const refused = await manager!.reconciles('Stream', 'refused');
    await waitFor('several more reconciles', async () => (await manager!.reconciles('Stream', 'refused')) >= refused + 3);
    expect((await readStream(jsm, SHARED))?.config.max_age).toBe(HOUR);
    expect(ready(await get('Stream', K8S_NS, 'first'))?.status).toBe('True');
    const warned = (await eventsFor(kc, K8S_NS, 'Stream', 'second')).filter((e) => e.reason === 'OwnedElsewhere');
    expect(warned).toHaveLength(1);
  });

  it('deleting the resource that does not own the object leaves the object alone', async () => {
    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'second', '--timeout=30s']);
    expect(await readStream(jsm, SHARED)).toBeDefined();
    expect((await readStream(jsm, SHARED))?.config.metadata?.[OWNER_KEY]).toBe(`${K8S_NS}/first`);
  });

  it(
    'a pre-existing object is NotOwned until the resource asks to adopt it; ' +
      'then it is marked, changed to the spec and deleted with the resource',
    async () => {
      const PRE = names.stream('PRE');
      await jsm.streams.add({ name: PRE, subjects: [names.subject('pre.>')], max_age: HOUR });
      await kubectlApply(cp, K8S_NS, cr('Stream', 'pre', { name: PRE, subjects: [names.subject('pre.>')], maxAge: '2h' }));
      const pre = await condition('Stream', K8S_NS, 'pre', 'NotOwned');
      expect(ready(pre)?.message).toContain(`${ADOPT_ANNOTATION}=true`);
      expect(pre.metadata.finalizers ?? []).not.toContain(FINALIZER);
      expect((await readStream(jsm, PRE))?.config.max_age).toBe(HOUR);

      await cp.kubectl(['annotate', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'pre', `${ADOPT_ANNOTATION}=true`]);
      await waitFor('adopted: marked and changed to the spec', async () => {
        const c = (await readStream(jsm, PRE))?.config;
        return c?.metadata?.[OWNER_KEY] === `${K8S_NS}/pre` && c.max_age === 2 * HOUR;
      });
      await waitFor('Adopted event', async () => (await eventsFor(kc, K8S_NS, 'Stream', 'pre')).some((e) => e.reason === 'Adopted'));
      const adopted = await waitFor('Ready with a finalizer', async () => {
        const o = await get('Stream', K8S_NS, 'pre');
        return ready(o)?.status === 'True' && o?.metadata.finalizers?.includes(FINALIZER) ? o : undefined;
      });
      expect(adopted.metadata.annotations?.[ADOPT_ANNOTATION]).toBe('true');
      await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'pre', '--timeout=30s']);
      expect(await readStream(jsm, PRE)).toBeUndefined();
    },
  );

  it('the orderflow CLI shows the owner and leaves an owned object to the operator', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'own-cli-'));
    try {
      writeFileSync(
        join(dir, 's.yaml'),
        stringify({
          apiVersion: API_VERSION,
          kind: 'Stream',
          metadata: { name: 'x' },
          spec: { name: SHARED, subjects: [names.subject('shared.>')], maxAge: '9h' },
        }),
      );
      const cli = async (...args: string[]) =>
        run(
          process.execPath,
          ['--import', 'tsx', '--conditions', 'development', new URL('../src/cli/main.ts', import.meta.url).pathname, ...args],
          { env: { ...process.env, NATS_URL: TEST_NATS_URL } },
        ).then(
          (r) => ({ code: 0, out: r.stdout }),
          (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
        );
      const diff = await cli('diff', '-f', dir);
      expect(diff.code).toBe(1);
      expect(diff.out).toContain(`would update  (owned by the Kubernetes resource ${K8S_NS}/first)`);
      const apply = await cli('streams', 'apply', '-f', dir);
      expect(apply.code).toBe(1);
      expect(apply.out).toContain(`owned by the Kubernetes resource ${K8S_NS}/first: left to the operator`);
      expect((await readStream(jsm, SHARED))?.config.max_age).toBe(HOUR);
      expect((await readStream(jsm, SHARED))?.config.metadata?.[OWNER_KEY]).toBe(`${K8S_NS}/first`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('preventUpdate and preventDelete', () => {
  it('preventUpdate: created when missing, never updated — the difference is reported (UpdatePrevented)', async () => {
    const PU = names.stream('PU');
    await kubectlApply(cp, K8S_NS, cr('Stream', 'pu', { name: PU, subjects: [names.subject('pu.>')], maxAge: '1h', preventUpdate: true }));
    await waitFor('created', async () => (await readStream(jsm, PU))?.config.max_age === HOUR);
    await kubectlPatch(cp, K8S_NS, 'Stream', 'pu', { spec: { maxAge: '3h' } });
    const o = await condition('Stream', K8S_NS, 'pu', 'UpdatePrevented');
    expect(ready(o)).toMatchObject({ status: 'True', observedGeneration: 2 });
    expect(ready(o)?.message).toMatch(/max_age.*3h/);
    expect((await readStream(jsm, PU))?.config.max_age).toBe(HOUR);
    // Turning it off applies the spec.
    await kubectlPatch(cp, K8S_NS, 'Stream', 'pu', { spec: { preventUpdate: false } });
    await waitFor('updated', async () => (await readStream(jsm, PU))?.config.max_age === 3 * HOUR);
  });

  it(
    'preventDelete: no finalizer (nothing to do at deletion, nothing to hold); turning it on removes ours; ' + 'deleting keeps the object',
    async () => {
      const KEEP = names.stream('KEEP');
      await kubectlApply(cp, K8S_NS, cr('Stream', 'keep', { name: KEEP, subjects: [names.subject('keep.>')] }));
      await waitFor('Ready with our finalizer', async () => {
        const o = await get('Stream', K8S_NS, 'keep');
        return ready(o)?.status === 'True' && o?.metadata.finalizers?.includes(FINALIZER);
      });
      await kubectlPatch(cp, K8S_NS, 'Stream', 'keep', { spec: { preventDelete: true } });
      await waitFor('finalizer removed', async () => !(await get('Stream', K8S_NS, 'keep'))?.metadata.finalizers?.includes(FINALIZER));
      await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'keep', '--timeout=30s']);
      expect(await readStream(jsm, KEEP)).toBeDefined();
    },
  );
});

describe('observe mode (OPERATOR_MODE=observe)', () => {
  it('reports Missing, Drifted and InSync, writes nothing to JetStream, holds no finalizer, deletes nothing', async () => {
    const [MISSING, DRIFT, SAME] = [names.stream('OBSMISSING'), names.stream('OBSDRIFT'), names.stream('OBSSAME')];
    await jsm.streams.add({ name: DRIFT, subjects: [names.subject('obsdrift.>')], max_age: HOUR });
    await jsm.streams.add({ name: SAME, subjects: [names.subject('obssame.>')], max_age: HOUR });
    await kubectlApply(
      cp,
      OBS_NS,
      cr('Stream', 'missing', { name: MISSING, subjects: [names.subject('obsmissing.>')] }),
      cr('Stream', 'drift', { name: DRIFT, subjects: [names.subject('obsdrift.>')], maxAge: '2h' }),
      cr('Stream', 'same', { name: SAME, subjects: [names.subject('obssame.>')], maxAge: '1h' }),
    );
    const missing = await condition('Stream', OBS_NS, 'missing', 'Missing');
    expect(ready(missing)).toMatchObject({ status: 'False' });
    expect(ready(missing)?.message).toContain('observe mode: not created');
    const drift = await condition('Stream', OBS_NS, 'drift', 'Drifted');
    expect(ready(drift)?.message).toMatch(/max_age/);
    const same = await condition('Stream', OBS_NS, 'same', 'InSync');
    expect(ready(same)?.status).toBe('True');
    expect(same.status?.messages).toBe(0);

    expect(await readStream(jsm, MISSING)).toBeUndefined();
    expect((await readStream(jsm, DRIFT))?.config.max_age).toBe(HOUR);
    expect((await readStream(jsm, DRIFT))?.config.metadata?.[OWNER_KEY]).toBeUndefined();
    for (const n of ['missing', 'drift', 'same'])
      expect((await get('Stream', OBS_NS, n))?.metadata.finalizers ?? []).not.toContain(FINALIZER);
    await cp.kubectl(['delete', '-n', OBS_NS, 'streams.jetstream.orderflow.dev', 'same', '--timeout=30s']);
    expect(await readStream(jsm, SAME)).toBeDefined();
    expect(await observer!.reconciles('Stream', 'created')).toBe(0);
    expect(await observer!.reconciles('Stream', 'updated')).toBe(0);
  });
});
