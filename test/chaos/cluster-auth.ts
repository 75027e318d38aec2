/**
 * Per-service NATS users on a chaos cluster (test/support/nats-auth.ts generates the config), and
 * the fault of changing their passwords and back: the config file is rewritten and every node
 * reloads it (SIGHUP), which disconnects the clients whose credentials no longer hold.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { TestNatsCluster } from '../support/cluster.js';
import { natsAuthConfig, SERVICE_USERS } from '../support/nats-auth.js';
import type { ServiceName } from '../support/topology.js';

const SERVICES = Object.keys(SERVICE_USERS) as ServiceName[];
const secret = () => randomBytes(12).toString('hex');

interface Connz {
  connections?: Array<{ authorized_user?: string; name?: string }>;
}

export class ClusterAuth {
  readonly passwords: Record<ServiceName | 'admin', string> = {
    admin: secret(),
    'order-service': secret(),
    'inventory-service': secret(),
    'payment-service': secret(),
  };

  constructor(
    readonly confPath: string,
    readonly namespace: string,
  ) {
    this.write(this.passwords);
  }

  get admin(): { user: string; pass: string } {
    return { user: 'admin', pass: this.passwords.admin };
  }

  /** NATS_USER / NATS_PASSWORD for each service. */
  serviceEnv(): Partial<Record<ServiceName, Record<string, string>>> {
    return Object.fromEntries(SERVICES.map((s) => [s, { NATS_USER: SERVICE_USERS[s], NATS_PASSWORD: this.passwords[s] }]));
  }

  write(passwords: Record<ServiceName | 'admin', string>): void {
    writeFileSync(this.confPath, natsAuthConfig({ namespace: this.namespace, passwords }));
  }

  /** Every service user gets a new password (admin keeps its own, the harness keeps working). */
  rotateServices(cluster: TestNatsCluster): void {
    this.write({ ...this.passwords, ...Object.fromEntries(SERVICES.map((s) => [s, secret()])) });
    cluster.reload();
  }

  /** The passwords the services were started with, again. */
  restore(cluster: TestNatsCluster): void {
    this.write(this.passwords);
    cluster.reload();
  }

  /** Service connections each node currently holds, by user. */
  static async serviceConnections(cluster: TestNatsCluster): Promise<number> {
    let n = 0;
    const users = new Set<string>(Object.values(SERVICE_USERS));
    for (const node of cluster.nodes) {
      if (!node.server.pid || node.paused) continue;
      const r = await fetch(`http://127.0.0.1:${node.monitorPort}/connz?auth=true&limit=4096`, { signal: AbortSignal.timeout(2000) });
      const j = (await r.json()) as Connz;
      n += (j.connections ?? []).filter((c) => c.authorized_user && users.has(c.authorized_user)).length;
    }
    return n;
  }
}
