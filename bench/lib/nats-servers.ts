/**
 * The NATS servers a bench run compares: the current nats-server built by scripts/tools.sh
 * (started here, on a spare port with its own store, removed at the end) and the machine's own
 * (`NATS_URL`, Debian's 2.9). Without the built server only the machine's is measured, and the
 * report says so.
 */
import { existsSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { TestNatsServer } from '@orderflow/kit/testing';
import { onCleanup } from './cleanup.js';
import { ROOT } from './procs.js';

export interface BenchNats {
  /** e.g. "2.15.2 (built)" or "2.9.10 (machine)". */
  label: string;
  version: string;
  url: string;
}

async function versionOf(url: string): Promise<string> {
  const nc = await connect({ servers: url, name: 'bench-version' });
  try {
    return nc.info?.version ?? 'unknown';
  } finally {
    await nc.close();
  }
}

/** [current, machine]; current is undefined when scripts/tools.sh has not built nats-server. */
export async function benchNatsServers(machineUrl: string): Promise<{ current?: BenchNats; machine: BenchNats }> {
  const machine: BenchNats = { url: machineUrl, version: await versionOf(machineUrl), label: '' };
  machine.label = `${machine.version} (machine)`;
  const bin = `${ROOT}.tools/bin/nats-server`;
  if (!existsSync(bin)) return { machine };
  const server = await TestNatsServer.create({ bin, name: 'bench-nats' });
  onCleanup(`nats-server ${server.url}`, () => server.dispose());
  await server.start();
  const version = await versionOf(server.url);
  return { current: { url: server.url, version, label: `${version} (built)` }, machine };
}
