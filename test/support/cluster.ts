/**
 * A 3-node NATS JetStream cluster on loopback for chaos tests: three nats-server processes with
 * cluster routes to each other, their own store directories, client, cluster and monitoring
 * ports picked from spare ones. Any node can be killed (-9), stopped, restarted on the same
 * ports and store, or paused (SIGSTOP) and resumed. Test-only code.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePort, TestNatsServer, waitFor } from '@orderflow/kit/testing';
import { killGroup, track } from './reaper.js';

/**
 * The current nats-server scripts/tools.sh builds (the suite's main target), else whatever
 * `nats-server` is on PATH. NATS_SERVER_BIN is not consulted: the 2.9 compatibility leg sets it,
 * and a cluster with R3 streams is about today's server.
 */
export const CURRENT_NATS_SERVER = ((p) => (existsSync(p) ? p : 'nats-server'))(
  fileURLToPath(new URL('../../.tools/bin/nats-server', import.meta.url)),
);

export interface ClusterOptions {
  size?: number;
  /** Extra nats-server arguments for every node (e.g. `-c auth.conf`). */
  args?: string[];
  name?: string;
  /** nats-server binary (default CURRENT_NATS_SERVER). */
  bin?: string;
  /**
   * A configuration file every node includes (e.g. authorization), reloadable with reload():
   * each node gets a config of its own naming it (a reload re-reads only the file, and a
   * JetStream cluster node must find its `server_name` there) and including this one.
   */
  include?: string;
}

export interface ClusterNode {
  index: number;
  name: string;
  server: TestNatsServer;
  clusterPort: number;
  monitorPort: number;
  paused: boolean;
}

interface Jsz {
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
}

export class TestNatsCluster {
  readonly nodes: ClusterNode[] = [];
  readonly dir: string;
  #untrack: () => void;

  private constructor(readonly name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `orderflow-cluster-`));
    this.#untrack = track({
      name: `nats cluster ${name}`,
      dispose: () => this.dispose(),
      kill: () => {
        for (const n of this.nodes) killGroup(n.server.pid, 'SIGKILL');
      },
    });
  }

  static async create(o: ClusterOptions = {}): Promise<TestNatsCluster> {
    const size = o.size ?? 3;
    const c = new TestNatsCluster(o.name ?? `chaos_${Math.random().toString(36).slice(2, 8)}`);
    const ports = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), cluster: await freePort(), monitor: await freePort() });
    for (let i = 0; i < size; i++) {
      const p = ports[i]!;
      const routes = ports
        .filter((_, j) => j !== i)
        .map((q) => `nats://127.0.0.1:${q.cluster}`)
        .join(',');
      const name = `${c.name}-n${i + 1}`;
      const conf: string[] = [];
      if (o.include) {
        // A reload re-reads only the file and checks it as a whole: the node's full cluster and
        // JetStream settings go there too (the command-line flags below say the same).
        const file = join(c.dir, `n${i + 1}.conf`);
        const q = JSON.stringify;
        writeFileSync(
          file,
          [
            `server_name: ${q(name)}`,
            `listen: ${q(`127.0.0.1:${p.client}`)}`,
            `http: ${q(`127.0.0.1:${p.monitor}`)}`,
            // JetStream and its store directory come from the flags (the file may not repeat store_dir).
            `jetstream: enabled`,
            `cluster { name: ${q(c.name)}, listen: ${q(`127.0.0.1:${p.cluster}`)}, routes: [${routes
              .split(',')
              .map((r) => q(r))
              .join(', ')}] }`,
            // nats-server resolves an include relative to the including file (even a leading '/').
            `include ${q(relative(c.dir, o.include))}`,
            '',
          ].join('\n'),
        );
        conf.push('-c', file);
      }
      const server = await TestNatsServer.create({
        port: p.client,
        name,
        storeDir: join(c.dir, `n${i + 1}`),
        bin: o.bin ?? CURRENT_NATS_SERVER,
        args: [
          '--cluster',
          `nats://127.0.0.1:${p.cluster}`,
          '--cluster_name',
          c.name,
          '--routes',
          routes,
          '-m',
          String(p.monitor),
          ...conf,
          ...(o.args ?? []),
        ],
      });
      c.nodes.push({ index: i, name, server, clusterPort: p.cluster, monitorPort: p.monitor, paused: false });
    }
    return c;
  }

  /** Comma list of every node's client URL: what NATS_URL gets. */
  get urls(): string {
    return this.nodes.map((n) => n.server.url).join(',');
  }

  async start(): Promise<this> {
    await Promise.all(this.nodes.map((n) => n.server.start()));
    await this.waitHealthy();
    return this;
  }

  /** Every running node answers /healthz and agrees on a JetStream meta leader. */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      'NATS cluster healthy with a meta leader',
      async () => {
        for (const n of this.nodes) {
          if (!n.server.pid || n.paused) continue;
          const h = await fetch(`http://127.0.0.1:${n.monitorPort}/healthz`, { signal: AbortSignal.timeout(2000) });
          if (!h.ok) return false;
        }
        return (await this.metaLeader()) !== undefined;
      },
      timeoutMs,
      250,
    );
  }

  /** Name of the JetStream meta leader as some running node sees it. */
  async metaLeader(): Promise<string | undefined> {
    for (const n of this.nodes) {
      if (!n.server.pid || n.paused) continue;
      try {
        const r = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz`, { signal: AbortSignal.timeout(2000) });
        const j = (await r.json()) as Jsz;
        if (j.meta_cluster?.leader) return j.meta_cluster.leader;
      } catch {
        // try the next node
      }
    }
    return undefined;
  }

  node(nameOrIndex: string | number): ClusterNode {
    const n = typeof nameOrIndex === 'number' ? this.nodes[nameOrIndex] : this.nodes.find((x) => x.name === nameOrIndex);
    if (!n) throw new Error(`no node ${nameOrIndex}`);
    return n;
  }

  /** Credentials connect() uses when given none (a cluster started with an auth config). */
  clientAuth: { user: string; pass: string } | undefined;

  /** A client connection to the cluster (all URLs). */
  connect(opts: { user?: string; pass?: string } = {}): Promise<NatsConnection> {
    return connect({
      servers: this.urls.split(','),
      name: 'cluster-test',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...(this.clientAuth ?? {}),
      ...opts,
    });
  }

  /** The node leading a stream's Raft group. */
  async streamLeader(stream: string): Promise<ClusterNode> {
    const nc = await this.connect();
    try {
      const jsm = await jetstreamManager(nc);
      const leader = await waitFor(`leader of ${stream}`, async () => (await jsm.streams.info(stream)).cluster?.leader, 20_000, 200);
      return this.node(leader);
    } finally {
      await nc.close();
    }
  }

  async kill(i: number): Promise<void> {
    const n = this.node(i);
    n.paused = false;
    await n.server.stop('SIGKILL');
  }

  async stop(i: number): Promise<void> {
    const n = this.node(i);
    n.paused = false;
    await n.server.stop('SIGTERM');
  }

  /** Starts a stopped node again on its ports with its store directory. */
  async restart(i: number): Promise<void> {
    await this.node(i).server.start();
  }

  pause(i: number): void {
    const n = this.node(i);
    n.server.pause();
    n.paused = true;
  }

  resume(i: number): void {
    const n = this.node(i);
    n.server.resume();
    n.paused = false;
  }

  /** Stops every node (SIGTERM, or kill -9), then starts them all again and waits for health. */
  async restartAll(signal: NodeJS.Signals = 'SIGTERM', downMs = 1000): Promise<void> {
    await Promise.all(this.nodes.map((n) => ((n.paused = false), n.server.stop(signal))));
    await new Promise((r) => setTimeout(r, downMs));
    await Promise.all(this.nodes.map((n) => n.server.start()));
    await this.waitHealthy();
  }

  /** Kills every node and removes the store directories. Safe to call twice. */
  async dispose(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.server.dispose()));
    rmSync(this.dir, { recursive: true, force: true });
    this.#untrack();
  }

  /** Re-reads every running node's configuration file (`nats-server --signal reload`). */
  reload(): void {
    for (const n of this.nodes) if (n.server.pid) process.kill(n.server.pid, 'SIGHUP');
  }
}
