/**
 * The whole platform for end-to-end tests: order, inventory and payment services plus the
 * sandbox gateway, on the machine's real NATS and Postgres, isolated by a namespace (subjects,
 * streams) and one Postgres schema per service. A service runs either in-process (fast) or as a
 * real child process from its built `dist/` (for kill -9 and SIGTERM scenarios).
 *
 * Child processes are looked after like a kubelet looks after containers: each leads its own
 * process group (killed as a group), every exit nobody asked for is recorded as a crash with the
 * process's last words, and with `supervise` the child is started again on its port after a
 * backoff. Everything is registered with the reaper, so a failed or timed-out test leaves nothing
 * running.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { fileURLToPath } from 'node:url';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { startService, type RunningService } from '@orderflow/kit';
import {
  dropSchema,
  freePort,
  launchProcess,
  removeTestNamespace,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  testNamespace,
  testNats,
  waitFor,
  type LaunchedProcess,
} from '@orderflow/kit/testing';
import { startGateway, type RunningGateway } from '../../services/sandbox-gateway/src/index.js';
import { saidWhyItExits } from './exit-reason.js';
import { killGroup, track } from './reaper.js';
import { SERVICES, type ServiceName } from './topology.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PlatformOptions {
  /** Services to run as child processes instead of in-process. */
  childProcesses?: ServiceName[];
  /** Extra env for every service (e.g. SAGA_TIMEOUT_MS). */
  env?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  natsUrl?: string;
  /** Postgres for every service schema (default: the machine's shared one, TEST_DATABASE_URL). */
  databaseUrl?: string;
  /** Another Postgres for some services (their schema lives there). */
  databaseUrls?: Partial<Record<ServiceName, string>>;
  /** Env for one service only (e.g. its own NATS_USER / NATS_PASSWORD). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** How stop() connects to delete the run's streams (default: the machine's NATS). */
  natsConnect?: () => Promise<NatsConnection>;
  logLevel?: string;
  /** Start a child that exited on its own again, after a backoff, on the same port (a kubelet). */
  supervise?: boolean;
  /** Restart backoff (cockatiel ExponentialBackoff); default 250 ms doubling up to 5 s. */
  restartBackoff?: { initialDelay: number; maxDelay: number };
}

/** A child process that exited without the test asking for it. */
export interface CrashRecord {
  id: string;
  service: ServiceName;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  uptimeMs: number;
  /** The process said why (a `fatal` log line) and exited non-zero on purpose, no Node crash. */
  deliberate: boolean;
  /** The end of its output, to say why in a report. */
  tail: string;
}

interface Instance {
  id: string;
  name: ServiceName;
  port: number;
  inProcess?: RunningService;
  /** The current run of a child-process instance. */
  child?: LaunchedProcess;
  startedAt: number;
  restarts: number;
  backoff?: IBackoff<unknown>;
  restartTimer?: NodeJS.Timeout;
  /** The tails of earlier runs (a restarted child's history). */
  earlier: string;
}

export class Platform {
  readonly ns = testNamespace('e2e');
  readonly schemas: Record<ServiceName, string>;
  readonly databaseUrl: string;
  gateway!: RunningGateway;
  readonly instances = new Map<string, Instance>();
  /** Every exit nobody asked for, in order (kept across restarts). */
  readonly crashes: CrashRecord[] = [];
  #stopping: Promise<void> | undefined;
  #untrack: () => void;

  constructor(readonly opts: PlatformOptions = {}) {
    this.databaseUrl = opts.databaseUrl ?? TEST_DATABASE_URL;
    this.schemas = {
      'order-service': `${this.ns}_order`,
      'inventory-service': `${this.ns}_inventory`,
      'payment-service': `${this.ns}_payment`,
    };
    this.#untrack = track({ name: `platform ${this.ns}`, dispose: () => this.stop(), kill: () => this.#killAllSync() });
  }

  envFor(name: ServiceName, port: number): Record<string, string> {
    return {
      PORT: String(port),
      NATS_URL: this.opts.natsUrl ?? TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: this.ns,
      DATABASE_URL: this.databaseUrlOf(name),
      DATABASE_SCHEMA: this.schemas[name],
      PAYMENT_GATEWAY_URL: this.gateway.url,
      LOG_LEVEL: this.opts.logLevel ?? 'warn',
      SHUTDOWN_TIMEOUT_MS: '20000',
      ...(this.opts.env ?? {}),
      ...(this.opts.serviceEnv?.[name] ?? {}),
    };
  }

  /** The Postgres that holds a service's schema. */
  databaseUrlOf(name: ServiceName): string {
    return this.opts.databaseUrls?.[name] ?? this.databaseUrl;
  }

  async start(): Promise<this> {
    this.gateway = await startGateway({
      port: 0,
      hostname: '127.0.0.1',
      env: { LOG_LEVEL: 'warn', SANDBOX_LATENCY_MS: '0', ...(this.opts.gatewayEnv ?? {}) },
    });
    await Promise.all((['inventory-service', 'payment-service', 'order-service'] as const).map((n) => this.startInstance(n)));
    return this;
  }

  url(name: ServiceName, id: string = name): string {
    const i = this.instances.get(id);
    if (!i) throw new Error(`${id} is not running`);
    return `http://127.0.0.1:${i.port}`;
  }

  /** Starts one instance; `id` lets a test run two instances of one service (rolling deploys). */
  async startInstance(name: ServiceName, id: string = name, child = this.opts.childProcesses?.includes(name) ?? false): Promise<Instance> {
    if (this.#stopping) throw new Error(`platform ${this.ns} is stopping: not starting ${id}`);
    const port = await freePort();
    const inst: Instance = { id, name, port, earlier: '', startedAt: Date.now(), restarts: 0 };
    if (child) await this.#spawn(inst);
    else inst.inProcess = await startService(SERVICES[name](), { env: this.envFor(name, port), hostname: '127.0.0.1' });
    this.instances.set(id, inst);
    try {
      await waitFor(`${id} ready`, async () => (await fetch(`http://127.0.0.1:${port}/ready`)).ok, 30_000, 100);
    } catch (err) {
      // Say why: the child's own last words are the useful part.
      throw new Error(`${(err as Error).message}\n--- ${id} output (exit ${inst.child?.proc.exitCode ?? 'n/a'}) ---\n${this.output(id)}`, {
        cause: err,
      });
    }
    return inst;
  }

  /** What an instance said, the newest `maxChars` (earlier runs of a restarted child included). */
  output(id: string, maxChars = 4000): string {
    const i = this.instances.get(id);
    return i ? `${i.earlier}${i.child?.output(maxChars) ?? ''}`.slice(-maxChars) : '';
  }

  async #spawn(inst: Instance): Promise<void> {
    const child = await launchProcess({
      name: inst.id,
      args: [`services/${inst.name}/dist/main.js`],
      cwd: ROOT,
      env: this.envFor(inst.name, inst.port),
      // Its own process group: killed as a group, and a terminal's Ctrl-C is ours to pass on.
      detached: true,
      keepLines: 2000,
    });
    inst.child = child;
    inst.startedAt = Date.now();
    void child.exited.then(({ code, signal }) => this.#exited(inst, child, code, signal));
  }

  #exited(inst: Instance, child: LaunchedProcess, code: number | null, signal: NodeJS.Signals | null): void {
    // Asked for (kill, terminate, stop) means the instance was taken out of the map first.
    if (this.instances.get(inst.id) !== inst || inst.child !== child || this.#stopping) return;
    const run = child.output(65_536);
    this.crashes.push({
      id: inst.id,
      service: inst.name,
      pid: child.proc.pid,
      code,
      signal,
      at: Date.now(),
      uptimeMs: Date.now() - inst.startedAt,
      deliberate: code !== null && code !== 0 && saidWhyItExits(run),
      tail: run.slice(-4000),
    });
    inst.earlier = `${inst.earlier}${run}\n--- exited (code ${code}, signal ${signal}) ---\n`.slice(-65_536);
    if (!this.opts.supervise) return;
    if (Date.now() - inst.startedAt > 60_000) inst.backoff = undefined;
    inst.backoff = inst.backoff
      ? inst.backoff.next(undefined)
      : new ExponentialBackoff(this.opts.restartBackoff ?? { initialDelay: 250, maxDelay: 5000 }).next();
    inst.restarts++;
    inst.restartTimer = setTimeout(() => {
      if (this.instances.get(inst.id) === inst && !this.#stopping) void this.#spawn(inst).catch(() => undefined);
    }, inst.backoff.duration);
  }

  /** kill -9 a child-process instance (its whole process group). */
  async kill(id: string): Promise<void> {
    const i = this.instances.get(id);
    if (!i?.child) throw new Error(`${id} is not a child process`);
    this.instances.delete(id);
    clearTimeout(i.restartTimer);
    await i.child.stop({ signal: 'SIGKILL' });
  }

  /** Graceful stop (SIGTERM for a child); resolves with the exit code and how long it took. */
  async terminate(id: string): Promise<{ code: number | null; ms: number }> {
    const i = this.instances.get(id);
    if (!i) throw new Error(`${id} is not running`);
    const t0 = Date.now();
    this.instances.delete(id);
    clearTimeout(i.restartTimer);
    if (i.child) return { code: await i.child.stop({ signal: 'SIGTERM', killAfterMs: 60_000 }), ms: Date.now() - t0 };
    await i.inProcess!.stop();
    return { code: 0, ms: Date.now() - t0 };
  }

  async setStock(productId: string, onHand: number, price = 10): Promise<void> {
    const r = await fetch(`${this.url('inventory-service', this.anyInstance('inventory-service'))}/products/${productId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ onHand, price }),
    });
    if (!r.ok) throw new Error(`PUT product ${productId}: ${r.status} ${await r.text()}`);
  }

  anyInstance(name: ServiceName): string {
    for (const [id, i] of this.instances) if (i.name === name) return id;
    throw new Error(`no ${name} running`);
  }

  async placeOrder(
    customerId: string,
    items: Array<{ productId: string; quantity: number }>,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; orderId?: string }> {
    const r = await fetch(`${this.url('order-service', this.anyInstance('order-service'))}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ customerId, items }),
    });
    const body = (await r.json()) as { orderId?: string };
    return { status: r.status, orderId: body.orderId };
  }

  async order(orderId: string): Promise<{ status: string; reason?: string; total?: number; history: Array<{ status: string }> }> {
    const r = await fetch(`${this.url('order-service', this.anyInstance('order-service'))}/orders/${orderId}`);
    return (await r.json()) as { status: string; reason?: string; total?: number; history: Array<{ status: string }> };
  }

  async product(productId: string): Promise<{ onHand: number; reserved: number }> {
    const r = await fetch(`${this.url('inventory-service', this.anyInstance('inventory-service'))}/products/${productId}`);
    return (await r.json()) as { onHand: number; reserved: number };
  }

  /** Waits until every given order is confirmed or cancelled; returns their final views. */
  async waitFinal(orderIds: string[], timeoutMs = 60_000): Promise<Map<string, { status: string; reason?: string }>> {
    const final = new Map<string, { status: string; reason?: string }>();
    const pending = new Set(orderIds);
    await waitFor(
      `${orderIds.length} orders final`,
      async () => {
        // One query for all: order-service's own database is the source of truth.
        const rows = await this.query<{ id: string; status: string; reason: string | null }>(
          'order-service',
          `SELECT id, status, reason FROM orders WHERE id = ANY($1::uuid[]) AND status IN ('confirmed', 'cancelled')`,
          [[...pending]],
        );
        for (const r of rows) {
          final.set(r.id, { status: r.status, ...(r.reason ? { reason: r.reason } : {}) });
          pending.delete(r.id);
        }
        return pending.size === 0;
      },
      timeoutMs,
      250,
    );
    return final;
  }

  /** Reads a service's schema directly (test assertions only; services never share tables). */
  async query<R>(name: ServiceName, sql: string, params: unknown[] = []): Promise<R[]> {
    const pg = (await import('pg')).default;
    const c = new pg.Client({ connectionString: this.databaseUrlOf(name), options: `-c search_path=${this.schemas[name]}` });
    // A database that goes away under a test must fail this query, not the test process.
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  /** Kills every child (process groups), stops the rest, deletes streams and schemas. Idempotent. */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#stop());
  }

  async #stop(): Promise<void> {
    try {
      await Promise.allSettled(
        [...this.instances.values()].map(async (i) => {
          clearTimeout(i.restartTimer);
          if (i.child) await i.child.stop({ signal: 'SIGKILL' });
          else await i.inProcess?.stop();
        }),
      );
      this.instances.clear();
      await this.gateway?.stop().catch(() => undefined);
      // A broker that is down (chaos) must not keep the schemas from being dropped.
      const cleanup = async () => removeTestNamespace(await (this.opts.natsConnect ?? testNats)(), this.ns);
      await Promise.race([cleanup().catch(() => undefined), new Promise((r) => setTimeout(r, 15_000).unref())]);
      for (const [name, schema] of Object.entries(this.schemas) as Array<[ServiceName, string]>)
        await dropSchema(schema, this.databaseUrlOf(name)).catch(() => undefined);
    } finally {
      this.#untrack();
    }
  }

  #killAllSync(): void {
    for (const i of this.instances.values()) {
      clearTimeout(i.restartTimer);
      if (i.child?.running()) killGroup(i.child.proc.pid, 'SIGKILL');
    }
  }
}
