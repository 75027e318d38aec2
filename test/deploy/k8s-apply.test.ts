/**
 * k8s/ read by the real kubectl against a real kube-apiserver (test/support/control-plane.ts), the
 * way docs/deploy.md tells kubectl users to apply it: the CRDs and the namespace, the Secret, then
 * everything else — first with `--dry-run=server` (admission, schemas, CRD validation), then for
 * real. Every document of every file must come back as an object the server stored, and no pod
 * template may draw a Pod Security ("restricted", the namespace's level) warning.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubectlWait, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { root } from './helm.js';
import { yamlFiles, loadDocs } from './k8s-validate.js';

/** The documented kubectl path (docs/deploy.md, "Plain manifests"), in order. */
const STEPS = [
  'kubectl apply -f k8s/crds/ -f k8s/platform/00-namespace.yaml',
  'kubectl wait --for=condition=Established crd/streams.jetstream.orderflow.dev crd/consumers.jetstream.orderflow.dev',
  "kubectl -n orderflow create secret generic orderflow-db --from-literal=DATABASE_URL='postgres://…'",
  'kubectl apply -f k8s/nats/ -f k8s/platform/ -f k8s/observability/',
];
/** A step as kubectl arguments: paths made absolute, the URL placeholder filled in. */
const args = (step: string) =>
  step
    .replace(/^kubectl /, '')
    .replace("'postgres://…'", 'postgres://orderflow:pw@db.example:5432/orderflow')
    .split(' ')
    .map((a) => (a.startsWith('k8s/') ? join(root, a) : a));

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane({ name: 'k8s-apply' });
}, 180_000);
afterAll(async () => {
  await cp?.stop();
});

describe('kubectl reads every file under k8s/ (docs/deploy.md path)', () => {
  const docs = yamlFiles(join(root, 'k8s')).flatMap((f) => loadDocs(f, root));

  it('docs/deploy.md gives exactly these commands, in this order', () => {
    const md = readFileSync(join(root, 'docs', 'deploy.md'), 'utf8');
    let at = 0;
    for (const step of STEPS) {
      const i = md.indexOf(step, at);
      expect(i, step).toBeGreaterThanOrEqual(0);
      at = i + step.length;
    }
  });

  it('CRDs and namespace are applied and established; the Secret is created', async () => {
    await cp.kubectl(args(STEPS[0]!));
    await kubectlWait(cp, args(STEPS[1]!));
    await cp.kubectl(args(STEPS[2]!));
  });

  it("the rest passes the API server's admission with --dry-run=server, then applies for real", async () => {
    // Everything but the CRDs: k8s/platform/ holds the namespace again (unchanged by now).
    const rest = docs.filter((d) => !d.file.startsWith('k8s/crds/'));
    const dry = await cp.kubectlResult([...args(STEPS[3]!), '--dry-run=server']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.split('\n').filter((l) => / \(server dry run\)$/.test(l))).toHaveLength(rest.length);
    // The namespace enforces Pod Security "restricted": the server warns about any pod template that breaks it.
    expect(dry.stderr).not.toMatch(/PodSecurity/);
    const real = await cp.kubectl(args(STEPS[3]!));
    expect(real.split('\n').filter((l) => / (created|configured|unchanged)$/.test(l))).toHaveLength(rest.length);
  });

  it('every document of every k8s/ file is an object the server holds', async () => {
    const files = yamlFiles(join(root, 'k8s'));
    const names = (await cp.kubectl(['get', ...files.flatMap((f) => ['-f', f]), '-o', 'name'])).trim().split('\n');
    expect(names).toHaveLength(docs.length);
    expect(names).toEqual(
      expect.arrayContaining(['statefulset.apps/nats', 'deployment.apps/orderflow-operator', 'stream.jetstream.orderflow.dev/orders']),
    );
  });

  it('the Pod Security check is live: a root pod template in the namespace draws the warning', async () => {
    const rootPod = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'psa-probe', namespace: 'orderflow' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      },
    };
    const r = await cp.kubectlResult(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify(rootPod) });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/would violate PodSecurity "restricted/);
  });

  it('kubectl does refuse what it cannot read (the unquoted "?" in a flow mapping k8s/nats once had)', async () => {
    const bad =
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: bad, namespace: orderflow }\n' +
      'data: { probe: /healthz?js-enabled-only=true, x: y }\n';
    const r = await cp.kubectlResult(['apply', '--dry-run=server', '-f', '-'], { input: bad });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/yaml|expected/i);
  });
});
