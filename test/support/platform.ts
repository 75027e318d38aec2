/**
 * The whole platform for end-to-end tests: order, inventory and payment services plus the
 * sandbox gateway, on the machine's real NATS and Postgres, isolated by a namespace (subjects,
 * streams) and one Postgres schema per service. A service runs either in-process (fast) or as a
 * real child process from its built `dist/` (for kill -9 and SIGTERM scenarios).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { NatsConnection } from '@nats-io/transport-node';
import { fileURLToPath } from 'node:url';
import { startService, type RunningService, type ServiceDefinition, type ServiceName } from '@orderflow/kit';
import { deleteNamespaceStreams, dropSchema, freePort, TEST_DATABASE_URL, TEST_NATS_URL, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../../services/order-service/src/index.js';
import { inventoryService } from '../../services/inventory-service/src/index.js';
import { paymentService } from '../../services/payment-service/src/index.js';
import { startGateway, type RunningGateway } from '../../services/sandbox-gateway/src/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const DEFINITIONS: Record<ServiceName, () => ServiceDefinition> = {
  'order-service': orderService,
  'inventory-service': inventoryService,
  'payment-service': () => paymentService(),
};

export interface PlatformOptions {
  /** Services to run as child processes instead of in-process. */
  childProcesses?: ServiceName[];
  /** Extra env for every service (e.g. SAGA_TIMEOUT_MS). */
  env?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  natsUrl?: string;
  /** Env for one service only (e.g. its own NATS_USER / NATS_PASSWORD). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /** How stop() connects to delete the run's streams (default: the machine's NATS). */
  natsConnect?: () => Promise<NatsConnection>;
  logLevel?: string;
}

interface Instance {
  name: ServiceName;
  port: number;
  inProcess?: RunningService;
  child?: ChildProcess;
  output: string[];
}

export class Platform {
  readonly ns = testNamespace('e2e');
  readonly schemas: Record<ServiceName, string>;
  gateway!: RunningGateway;
  readonly instances = new Map<string, Instance>();

  constructor(readonly opts: PlatformOptions = {}) {
    this.schemas = {
      'order-service': `${this.ns}_order`,
      'inventory-service': `${this.ns}_inventory`,
      'payment-service': `${this.ns}_payment`,
    };
  }

  envFor(name: ServiceName, port: number): Record<string, string> {
    return {
      PORT: String(port),
      NATS_URL: this.opts.natsUrl ?? TEST_NATS_URL,
      ORDERFLOW_NAMESPACE: this.ns,
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: this.schemas[name],
      PAYMENT_GATEWAY_URL: this.gateway.url,
      LOG_LEVEL: this.opts.logLevel ?? 'warn',
      SHUTDOWN_TIMEOUT_MS: '20000',
      ...(this.opts.env ?? {}),
      ...(this.opts.serviceEnv?.[name] ?? {}),
    };
  }

  async start(): Promise<this> {
    this.gateway = await startGateway({ port: 0, hostname: '127.0.0.1', env: { LOG_LEVEL: 'warn', SANDBOX_LATENCY_MS: '0', ...(this.opts.gatewayEnv ?? {}) } });
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
    const port = await freePort();
    const env = this.envFor(name, port);
    const inst: Instance = { name, port, output: [] };
    if (child) {
      const proc = spawn(process.execPath, [`services/${name}/dist/main.js`], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (b: Buffer) => {
        inst.output.push(b.toString());
        if (inst.output.length > 2000) inst.output.splice(0, 1000);
      };
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      inst.child = proc;
    } else {
      inst.inProcess = await startService(DEFINITIONS[name](), { env, hostname: '127.0.0.1' });
    }
    this.instances.set(id, inst);
    try {
      await waitFor(`${id} ready`, async () => (await fetch(`http://127.0.0.1:${port}/ready`)).ok, 30_000, 100);
    } catch (err) {
      // Say why: the child's own last words are the useful part.
      throw new Error(`${(err as Error).message}\n--- ${id} output (exit ${inst.child?.exitCode ?? 'n/a'}) ---\n${inst.output.join('').slice(-4000)}`, { cause: err });
    }
    return inst;
  }

  /** kill -9 a child-process instance. */
  async kill(id: string): Promise<void> {
    const i = this.instances.get(id);
    if (!i?.child) throw new Error(`${id} is not a child process`);
    const exited = new Promise((r) => i.child!.once('exit', r));
    i.child.kill('SIGKILL');
    await exited;
    this.instances.delete(id);
  }

  /** Graceful stop (SIGTERM for a child); resolves with the exit code and how long it took. */
  async terminate(id: string): Promise<{ code: number | null; ms: number }> {
    const i = this.instances.get(id);
    if (!i) throw new Error(`${id} is not running`);
    const t0 = Date.now();
    this.instances.delete(id);
    if (i.child) {
      const exited = new Promise<number | null>((r) => i.child!.once('exit', (code) => r(code)));
      i.child.kill('SIGTERM');
      return { code: await exited, ms: Date.now() - t0 };
    }
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

  async placeOrder(customerId: string, items: Array<{ productId: string; quantity: number }>, headers: Record<string, string> = {}): Promise<{ status: number; orderId?: string }> {
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
    const c = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${this.schemas[name]}` });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as R[];
    } finally {
      await c.end();
    }
  }

  async stop(): Promise<void> {
    for (const id of [...this.instances.keys()]) {
      const i = this.instances.get(id)!;
      if (i.child) await this.kill(id).catch(() => undefined);
      else await this.terminate(id).catch(() => undefined);
    }
    await this.gateway?.stop();
    // A broker that is down (chaos) must not keep the schemas from being dropped.
    const cleanup = async () => {
      const nc = await (this.opts.natsConnect ?? testNats)();
      try {
        await deleteNamespaceStreams(nc, this.ns);
      } finally {
        await nc.close();
      }
    };
    await Promise.race([cleanup().catch(() => undefined), new Promise((r) => setTimeout(r, 15_000).unref())]);
    for (const s of Object.values(this.schemas)) await dropSchema(s);
  }
}
