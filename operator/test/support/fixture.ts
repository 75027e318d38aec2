/**
 * What every operator test file on the real control plane sets up the same way: its names (the
 * NATS-side namespace, its Names, the Kubernetes namespace made of it), a capturing logger, and a
 * control plane with the chart's CRDs and that namespace. NATS stays with each file: the files
 * differ there (the suite's server, servers of their own, operator mode, a NatsManager).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Names } from '@orderflow/kit';
import { testNamespace } from '@orderflow/kit/testing';
import { startControlPlane, type ControlPlane } from '../../../test/support/control-plane.js';
import { capturingLogger, installCrds, kubeConfigFrom, reader } from './kube.js';

export type Reader = ReturnType<typeof reader>;

export interface OperatorTestFixture {
  /** The NATS-side namespace (stream and subject prefixes). */
  ns: string;
  names: Names;
  /** The Kubernetes namespace the file's resources live in (ns, with '-' for '_'). */
  K8S_NS: string;
  log: Logger;
  lines: Record<string, unknown>[];
  /** Reads a resource through the control plane; only once start() has resolved. */
  get: Reader;
  /** Starts the control plane, installs the CRDs and creates K8S_NS. */
  start(): Promise<{ cp: ControlPlane; kc: KubeConfig }>;
  /** Stops the control plane, if it was started. */
  stop(): Promise<void>;
}

/**
 * @param label the testNamespace label (unique per file).
 * @param controlPlane the control plane's name (its data directory and logs).
 */
export function operatorTestFixture(label: string, controlPlane: string): OperatorTestFixture {
  const ns = testNamespace(label);
  const K8S_NS = ns.replace(/_/g, '-');
  const { log, lines } = capturingLogger();
  let cp: ControlPlane | undefined;
  let read: Reader | undefined;
  return {
    ns,
    names: new Names(ns),
    K8S_NS,
    log,
    lines,
    get: (kind, namespace, name) => {
      if (!read) throw new Error(`operator test fixture ${label}: get(${kind} ${namespace}/${name}) before start()`);
      return read(kind, namespace, name);
    },
    async start() {
      cp = await startControlPlane({ name: controlPlane });
      await installCrds(cp);
      await cp.kubectl(['create', 'namespace', K8S_NS]);
      const kc = kubeConfigFrom(cp.kubeconfigPath);
      read = reader(kc);
      return { cp, kc };
    },
    async stop() {
      await cp?.stop();
    },
  };
}
