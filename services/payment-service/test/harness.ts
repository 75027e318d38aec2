import { randomUUID } from 'node:crypto';
import { headers as natsHeaders, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { makeEvent, Names, openPglite, startService, type Db, type EventData, type EventType, type RunningService } from '@orderflow/kit';
import { removeTestNamespace, testDbEnv, testNamespace, testNats, waitFor, TEST_NATS_URL } from '@orderflow/kit/testing';
import { startGateway, type GatewayStats, type RunningGateway } from '@orderflow/sandbox-gateway';
import { paymentService } from '../src/index.js';

export interface Seen {
  type: string;
  data: Record<string, unknown>;
}

/**
 * One payment-service (in-process, real NATS, real Postgres or PGlite) talking HTTP to one
 * in-process sandbox gateway on a random port; events are published straight to the streams.
 */
export class Harness {
  svc!: RunningService;
  gw!: RunningGateway;
  nc!: NatsConnection;
  js!: JetStreamClient;
  readonly ns = testNamespace('pay');
  readonly names = new Names(this.ns);
  readonly events: Seen[] = [];
  #sub?: Subscription;
  #cleanupDb: () => Promise<void> = async () => undefined;
  #db?: Db;

  async start(backend: 'postgres' | 'pglite', env: Record<string, string> = {}): Promise<void> {
    this.gw = await startGateway({ port: 0, hostname: '127.0.0.1', env: { LOG_LEVEL: 'warn' } });
    let dbEnv: Record<string, string>;
    if (backend === 'postgres') {
      const db = await testDbEnv('postgres', 'payment_test');
      dbEnv = db.env;
      this.#cleanupDb = db.cleanup;
    } else {
      // In-memory PGlite, opened here and handed to the service (faster than a data directory).
      const db = await openPglite({ schema: 'payment_service' });
      this.#db = db;
      dbEnv = {};
      this.#cleanupDb = () => db.close();
    }
    this.nc = await testNats();
    this.js = jetstream(this.nc);
    // Core subscription: sees what the outbox relay publishes into the PAYMENTS stream.
    this.#sub = this.nc.subscribe(this.names.subject('payments.>'));
    void (async () => {
      for await (const m of this.#sub!)
        this.events.push({ type: this.names.eventType(m.subject), data: m.json<Record<string, unknown>>() });
    })();
    this.svc = await startService(paymentService(), {
      env: {
        PORT: '0',
        NATS_URL: TEST_NATS_URL,
        ORDERFLOW_NAMESPACE: this.ns,
        LOG_LEVEL: 'warn',
        PAYMENT_GATEWAY_URL: this.gw.url,
        ...dbEnv,
        ...env,
      },
      db: this.#db,
    });
    await waitFor('payment-service ready', async () => (await fetch(`${this.svc.url}/ready`)).ok, 20_000);
    // The consumers exist once /ready says the topology is applied; give them a moment to pull.
    await waitFor('consumers', async () => {
      const jsm = this.svc.ctx.nats.current!.jsm;
      await jsm.consumers.info(this.names.stream('INVENTORY'), 'payment-inventory');
      await jsm.consumers.info(this.names.stream('ORDERS'), 'payment-orders');
      return true;
    });
  }

  async stop(): Promise<void> {
    await this.svc?.stop();
    await this.gw?.stop();
    this.#sub?.unsubscribe();
    await removeTestNamespace(this.nc, this.ns);
    await this.#cleanupDb();
  }

  /** Publishes an event as its producer's outbox would (fresh event id = fresh Nats-Msg-Id). */
  async publish<T extends EventType>(type: T, data: EventData<T>): Promise<string> {
    const e = makeEvent(this.names, type, data);
    const h = natsHeaders();
    for (const [k, v] of Object.entries(e.headers)) h.set(k, v);
    await this.js.publish(e.subject, e.payload, { msgID: e.id, headers: h });
    return e.id;
  }

  reserved(orderId: string, amount: number): EventData<'inventory.reserved'> {
    return {
      version: 'v1',
      orderId,
      correlationId: `corr-${orderId.slice(0, 8)}`,
      occurredAt: new Date().toISOString(),
      currency: 'USD',
      items: [{ productId: 'sku-1', quantity: 1, unitPrice: amount }],
      amount,
    };
  }

  cancelled(orderId: string, reason = 'timeout'): EventData<'orders.cancelled'> {
    return { version: 'v1', orderId, correlationId: `corr-${orderId.slice(0, 8)}`, occurredAt: new Date().toISOString(), reason };
  }

  newOrder(): string {
    return randomUUID();
  }

  eventsFor(orderId: string): Seen[] {
    return this.events.filter((e) => e.data.orderId === orderId);
  }

  waitForEvent(orderId: string, type: string, timeoutMs = 15_000): Promise<Seen> {
    return waitFor(`${type} for ${orderId}`, () => this.eventsFor(orderId).find((e) => e.type === type), timeoutMs);
  }

  async payment(orderId: string): Promise<{
    status: number;
    body: Record<string, unknown> & { inDoubt?: { checks: number; since?: string; nextCheckAt?: string; gaveUpAt?: string } };
  }> {
    const r = await fetch(`${this.svc.url}/payments/${orderId}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }

  /** Waits until the consumer has committed its handling of these events (their processed_events rows). */
  async processed(consumer: 'payment-inventory' | 'payment-orders', eventIds: string[]): Promise<void> {
    await waitFor(`${eventIds.length} event(s) processed by ${consumer}`, async () => {
      const rows = await this.svc.ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::text[])`,
        [consumer, eventIds],
      );
      return rows[0]?.n === eventIds.length;
    });
  }

  async gatewayCharges(orderId: string): Promise<Array<{ chargeId: string; status: string }>> {
    // Read the in-process state directly: the HTTP lookup is subject to injected failures.
    return [...this.gw.charges.values()].filter((c) => c.orderId === orderId);
  }

  stats(): GatewayStats {
    return { ...this.gw.stats };
  }

  async setGateway(cfg: {
    failureRate?: number;
    latencyMs?: number;
    captureDelayMs?: number;
    keyInUse?: 'wait' | 'conflict';
  }): Promise<void> {
    const r = await fetch(`${this.gw.url}/admin/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(cfg),
    });
    if (!r.ok) throw new Error(`admin/config ${r.status}`);
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await this.svc.ctx.metrics.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
    return v?.value ?? 0;
  }

  async ready(): Promise<{ status: number; body: { circuitBreaker?: { state: string }; down?: Record<string, string> } }> {
    const r = await fetch(`${this.svc.url}/ready`);
    return { status: r.status, body: (await r.json()) as { circuitBreaker?: { state: string } } };
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Settings of the in-doubt tests: a gateway that does not answer within 1 s is given up on after
 * two quick retries, and in-doubt charges are re-checked every few hundred ms instead of minutes.
 */
export const FAST_IN_DOUBT = {
  GATEWAY_TIMEOUT_MS: '1000',
  GATEWAY_MAX_RETRIES: '2',
  GATEWAY_RETRY_INITIAL_MS: '20',
  GATEWAY_RETRY_MAX_MS: '60',
  BREAKER_THRESHOLD: '50',
  // Timed-out attempts and recovery passes can open the breaker on a loaded machine; re-checks
  // that find it open are rescheduled, so let it half-open quickly instead of for 10 s.
  BREAKER_HALF_OPEN_AFTER_MS: '200',
  PAYMENT_RECOVERY_INTERVAL_MS: '100',
  PAYMENT_RECOVERY_AFTER_MS: '200',
  PAYMENT_IN_DOUBT_CHECK_INITIAL_MS: '100',
  PAYMENT_IN_DOUBT_CHECK_MAX_MS: '300',
};
