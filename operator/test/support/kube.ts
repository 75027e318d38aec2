/**
 * Helpers for the operator tests against the real control plane (test/support/control-plane.ts):
 * the project's CRDs applied with kubectl, resources written with kubectl, and fast reads through
 * client-node for the polling waits (a kubectl process per poll would eat the shared cores).
 */
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import type { Names } from '@orderflow/kit';
import { waitFor } from '@orderflow/kit/testing';
import { kubectlWait, type ControlPlane } from '../../../test/support/control-plane.js';
import { apiStatus } from '../../src/kube-api.js';
import { API_VERSION, GROUP, PLURAL, VERSION, type Condition, type Kind, type ResourceStatus } from '../../src/resources.js';

/** The chart's CRDs: the one source (k8s/crds is generated from the chart). */
const CRD_PLURALS = ['streams', 'consumers', 'natsconnections', 'keyvalues', 'objectstores'];

export const CRD_DIR = fileURLToPath(new URL('../../../charts/orderflow/crds/', import.meta.url));

export async function installCrds(cp: ControlPlane): Promise<void> {
  await cp.kubectl(['apply', '-f', CRD_DIR]);
  // Established is the server's own fact that the new REST paths are served.
  await kubectlWait(cp, ['wait', '--for=condition=Established', ...CRD_PLURALS.map((p) => `crd/${p}.${GROUP}`)]);
}

export function kubeConfigFrom(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface Obj {
  apiVersion: string;
  kind: Kind;
  metadata: {
    name: string;
    namespace?: string;
    generation?: number;
    resourceVersion?: string;
    finalizers?: string[];
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
  };
  spec: Record<string, unknown>;
  status?: ResourceStatus;
}

export const cr = (kind: Kind, name: string, spec: Record<string, unknown>): Obj => ({
  apiVersion: API_VERSION,
  kind,
  metadata: { name },
  spec,
});

/**
 * A Consumer resource whose durable is named like the resource, dead-lettering to the subject the
 * project's DLQ stream takes for that stream and durable; `spec` adds or overrides fields.
 */
export const deadLetterConsumer = (names: Names, name: string, streamName: string, spec: Record<string, unknown> = {}): Obj =>
  cr('Consumer', name, { streamName, durableName: name, deadLetter: { subject: names.dlqSubject(streamName, name) }, ...spec });

/** `kubectl apply -f -` of one or more objects into a namespace. */
export async function kubectlApply(cp: ControlPlane, namespace: string, ...objs: Obj[]): Promise<string> {
  return cp.kubectl(['apply', '-n', namespace, '-f', '-'], { input: objs.map((o) => JSON.stringify(o)).join('\n---\n') });
}

const mergePatch = (namespace: string, kind: Kind, name: string, patch: unknown): string[] => [
  'patch',
  '-n',
  namespace,
  `${PLURAL[kind]}.${GROUP}`,
  name,
  '--type=merge',
  '-p',
  JSON.stringify(patch),
];

export async function kubectlPatch(cp: ControlPlane, namespace: string, kind: Kind, name: string, patch: unknown): Promise<string> {
  return cp.kubectl(mergePatch(namespace, kind, name, patch));
}

/** A merge patch of a resource's spec that admission must refuse: kubectl's error text (throws when it is accepted). */
export async function refusedPatch(
  cp: ControlPlane,
  namespace: string,
  kind: Kind,
  name: string,
  spec: Record<string, unknown>,
): Promise<string> {
  const r = await cp.kubectlResult(mergePatch(namespace, kind, name, { spec }));
  if (r.code === 0) throw new Error(`patch ${kind}/${name} ${JSON.stringify(spec)} was accepted`);
  return r.stderr;
}

/** Reads through client-node; undefined once the object is gone. */
export function reader(kc: KubeConfig): (kind: Kind, namespace: string, name: string) => Promise<Obj | undefined> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return async (kind, namespace, name) => {
    try {
      return (await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL[kind], namespace, name })) as Obj;
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  };
}

export function ready(o: Obj | undefined): Condition | undefined {
  return o?.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Ready=True, and for the object's current generation (not a status left from before a change). */
export function readyForGeneration(o: Obj): boolean {
  return ready(o)?.status === 'True' && o.status?.observedGeneration === o.metadata.generation;
}

/**
 * Waits until the object read through `read` fits; a timeout names what was awaited and the Ready
 * condition last seen, which is usually what tells why.
 */
export async function waitForObject(
  read: (kind: Kind, namespace: string, name: string) => Promise<Obj | undefined>,
  namespace: string,
  kind: Kind,
  name: string,
  what: string,
  fits: (o: Obj) => boolean,
  timeoutMs = 30_000,
): Promise<Obj> {
  let last: Obj | undefined;
  try {
    return await waitFor(
      `${kind} ${name} ${what}`,
      async () => {
        last = await read(kind, namespace, name);
        return last && fits(last) ? last : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(ready(last))}`, { cause: err });
  }
}

/** A pino logger whose JSON lines are kept for assertions (and echoed when LOG_LEVEL is set). */
export function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const echo = process.env.LOG_LEVEL;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) {
        if (!l) continue;
        lines.push(JSON.parse(l) as Record<string, unknown>);
        if (echo) process.stderr.write(`${l}\n`);
      }
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}
