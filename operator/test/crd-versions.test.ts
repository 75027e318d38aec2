/**
 * The CRD versions on a REAL kube-apiserver: an installation made with the v1alpha1-only CRDs is
 * upgraded to the current ones (v1beta1 served and stored, v1alpha1 still served, conversion None),
 * its objects keep working — reconciled by the operator, which speaks v1beta1 — and the migration
 * docs/operator.md gives (rewrite every object, then drop v1alpha1 from storedVersions) leaves
 * nothing stored as v1alpha1. The printer columns show the live numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Names, readStream } from '@orderflow/kit';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { KubectlError, kubectlWait, startControlPlane, type ControlPlane } from '../../test/support/control-plane.js';
import { GROUP } from '../src/resources.js';
import { capturingLogger, CRD_DIR, installCrds, kubeConfigFrom, ready, reader } from './support/kube.js';
import { startTestOperator, type TestOperator } from './support/operator.js';

const ns = testNamespace('crdv');
const names = new Names(ns);
const K8S_NS = ns.replace(/_/g, '-');
const PLURALS = ['streams', 'consumers'];

let cp: ControlPlane;
let nc: NatsConnection;
let jsm: JetStreamManager;
let t: TestOperator | undefined;
const { log } = capturingLogger();

type Crd = {
  spec: { versions: { name: string; served: boolean; storage: boolean; deprecated?: boolean; deprecationWarning?: string }[] };
  status?: { storedVersions?: string[] };
};

/** The CRDs as shipped before v1beta1: the same schema under v1alpha1 only, stored. */
function alphaOnly(plural: string): Crd {
  const crd = parse(readFileSync(join(CRD_DIR, `${plural}.${GROUP}.yaml`), 'utf8')) as Crd;
  const alpha = crd.spec.versions.find((v) => v.name === 'v1alpha1')!;
  delete alpha.deprecated;
  delete alpha.deprecationWarning;
  crd.spec.versions = [{ ...alpha, storage: true, served: true }];
  return crd;
}

const storedVersions = async (plural: string): Promise<string[]> =>
  (JSON.parse(await cp.kubectl(['get', 'crd', `${plural}.${GROUP}`, '-o', 'json'])) as Crd).status?.storedVersions ?? [];

beforeAll(async () => {
  cp = await startControlPlane({ name: 'crd-versions' });
  nc = await testNats();
  jsm = await jetstreamManager(nc);
}, 180_000);

afterAll(async () => {
  await t?.op.stop();
  await cp?.stop();
  if (nc) {
    await deleteNamespaceStreams(nc, ns);
    await nc.close();
  }
});

describe('CRD versions', () => {
  it('v1alpha1 objects survive the upgrade to v1beta1 and are reconciled by the operator', async () => {
    await cp.kubectl(['apply', '-f', '-'], { input: PLURALS.map((p) => JSON.stringify(alphaOnly(p))).join('\n---\n') });
    await kubectlWait(cp, ['wait', '--for=condition=Established', ...PLURALS.map((p) => `crd/${p}.${GROUP}`)]);
    await cp.kubectl(['create', 'namespace', K8S_NS]);
    const old = {
      apiVersion: `${GROUP}/v1alpha1`,
      kind: 'Stream',
      metadata: { name: 'orders', namespace: K8S_NS },
      spec: { name: names.stream('ORDERS'), subjects: [names.subject('orders.>')] },
    };
    await cp.kubectl(['apply', '-f', '-'], { input: JSON.stringify(old) });
    expect(await storedVersions('streams')).toEqual(['v1alpha1']);
    // v1beta1 does not exist yet.
    const before = await cp.kubectl(['get', `streams.v1beta1.${GROUP}`, '-n', K8S_NS]).catch((e: unknown) => e);
    expect(before).toBeInstanceOf(KubectlError);

    await installCrds(cp);
    expect(await storedVersions('streams')).toEqual(['v1alpha1', 'v1beta1']);
    const kc = kubeConfigFrom(cp.kubeconfigPath);
    const get = reader(kc);
    t = await startTestOperator({ kc, nc, namespace: K8S_NS, log });
    // Settled (a resync after Created says InSync), so both reads below see one status.
    const s = await waitFor(
      'the v1alpha1 object reconciled through v1beta1',
      async () => {
        const o = await get('Stream', K8S_NS, 'orders');
        return ready(o)?.reason === 'InSync' ? o : undefined;
      },
      30_000,
    );
    expect(s.apiVersion).toBe(`${GROUP}/v1beta1`);
    expect(await readStream(jsm, names.stream('ORDERS'))).toBeDefined();

    // Both versions serve the same object, status included; v1alpha1 with a deprecation warning.
    const alpha = await cp.kubectlResult(['get', `streams.v1alpha1.${GROUP}`, 'orders', '-n', K8S_NS, '-o', 'json']);
    expect(alpha.code).toBe(0);
    expect(alpha.stderr).toContain(`${GROUP}/v1alpha1 Stream is deprecated; use ${GROUP}/v1beta1`);
    const a = JSON.parse(alpha.stdout) as { apiVersion: string; spec: unknown; status: unknown };
    expect(a.apiVersion).toBe(`${GROUP}/v1alpha1`);
    expect(a.spec).toEqual(s.spec);
    expect(a.status).toEqual(s.status);
  });

  it('the documented migration leaves nothing stored as v1alpha1', async () => {
    // docs/operator.md: rewrite every object (stored again in v1beta1), then forget v1alpha1.
    await waitFor('every object rewritten', async () => {
      const objs = await cp.kubectl(['get', PLURALS.map((p) => `${p}.${GROUP}`).join(','), '-A', '-o', 'json']);
      const r = await cp.kubectlResult(['replace', '-f', '-'], { input: objs });
      return r.code === 0; // a 409 (the operator wrote a status meanwhile): read and try again
    });
    for (const p of PLURALS) {
      await cp.kubectl([
        'patch',
        'crd',
        `${p}.${GROUP}`,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { storedVersions: ['v1beta1'] } }),
      ]);
      expect(await storedVersions(p)).toEqual(['v1beta1']);
    }
    // Still served and reconciled.
    const get = reader(kubeConfigFrom(cp.kubeconfigPath));
    expect(ready(await get('Stream', K8S_NS, 'orders'))?.status).toBe('True');
  });

  it('kubectl get shows the live numbers as columns (Message with -o wide)', async () => {
    const table = await cp.kubectl(['get', `streams.${GROUP}`, '-n', K8S_NS]);
    expect(table.split('\n')[0]).toMatch(/^NAME\s+READY\s+MESSAGES\s+PENDING\s+ACK PENDING\s+REASON\s+AGE$/);
    expect(table).toMatch(/orders\s+True\s+0\s+0\s+0\s+InSync\s+/);
    const wide = await cp.kubectl(['get', `streams.${GROUP}`, '-n', K8S_NS, '-o', 'wide']);
    expect(wide.split('\n')[0]).toMatch(/STREAM\s+MESSAGE$/);
    expect(wide).toContain(names.stream('ORDERS'));
  });
});
