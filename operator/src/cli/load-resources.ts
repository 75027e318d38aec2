/**
 * Reads Stream / Consumer / KeyValue / ObjectStore custom resources from YAML files
 * (multi-document, a file or a directory) — `kubectl apply` without Kubernetes.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ConsumerSpec, KeyValueSpec, ObjectStoreSpec, StreamSpec, Topology } from '@orderflow/kit';
import { connectionName } from '../connection-spec.js';
import { GROUP } from '../resources.js';

/** Both served versions carry the same fields (docs/operator.md, CRD versions). */
const API_VERSIONS = new Set([`${GROUP}/v1beta1`, `${GROUP}/v1alpha1`]);

async function yamlFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = (await readdir(path)).filter((f) => /\.ya?ml$/.test(f)).sort();
  return entries.map((f) => join(path, f));
}

export type Resources = Pick<Topology, 'streams' | 'consumers'> & {
  keyValues: KeyValueSpec[];
  objectStores: ObjectStoreSpec[];
  /** Resources naming a NatsConnection (`<Kind> <name> → <connection>`): the CLI has only its own NATS. */
  namingConnections: string[];
};

export async function loadResources(path: string): Promise<Resources> {
  const streams: StreamSpec[] = [];
  const consumers: ConsumerSpec[] = [];
  const keyValues: KeyValueSpec[] = [];
  const objectStores: ObjectStoreSpec[] = [];
  const namingConnections: string[] = [];
  for (const file of await yamlFiles(path)) {
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const o = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string }; spec?: unknown } | null;
      // Other kinds (CRDs, RBAC, NatsConnections) may share the directory; they are not ours to apply.
      if (!o || !API_VERSIONS.has(o.apiVersion ?? '')) continue;
      const via = connectionName(o);
      if (via && o.kind !== 'NatsConnection') namingConnections.push(`${o.kind} ${o.metadata?.name ?? '?'} → ${via}`);
      if (o.kind === 'Stream') streams.push(o.spec as StreamSpec);
      else if (o.kind === 'Consumer') consumers.push(o.spec as ConsumerSpec);
      else if (o.kind === 'KeyValue') keyValues.push(o.spec as KeyValueSpec);
      else if (o.kind === 'ObjectStore') objectStores.push(o.spec as ObjectStoreSpec);
    }
  }
  return { streams, consumers, keyValues, objectStores, namingConnections };
}
