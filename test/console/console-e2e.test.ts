/**
 * The ops console against a real platform (order, inventory, payment services + sandbox gateway
 * on the machine's NATS and Postgres, own namespace), driven in Chromium with playwright-core:
 * orders confirm and cancel, a malformed orders.created is dead-lettered as poison, and a valid
 * orders.created is dead-lettered after its handler failed on every allowed delivery (a fault we
 * inject in inventory's database). The page shows the counts and both dead letters; after the
 * fault is removed, Replay sends the valid one back and the order confirms; Discard (confirmed
 * in a dialog) drops the poison. Each page is saved as a screenshot under test-output/console/.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { createAdvisoryCopier, createLogger, deadLetterLookup, type AdvisoryCopier } from '@orderflow/kit';
import { TEST_NATS_URL, testNats, waitFor } from '@orderflow/kit/testing';
import { Platform } from '../support/platform.js';
import { platformTopology } from '../support/topology.js';
import { startConsole, type RunningConsole } from '../../services/console/src/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = join(ROOT, 'test-output', 'console');
// Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing).
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const TOKEN = 'console-e2e-token';
const JAEGER = 'http://jaeger.example:16686';

// Trace context on the platform's messages (as with the OTel SDK on), so timelines link traces.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
trace.setGlobalTracerProvider(new BasicTracerProvider());

describe('ops console end to end', () => {
  const platform = new Platform({ env: { SAGA_TIMEOUT_MS: '60000' }, logLevel: 'error' });
  let con: RunningConsole;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let copier: AdvisoryCopier;
  let ctx: BrowserContext;
  let page: Page;
  let userDataDir: string;
  const audit: Array<Record<string, unknown>> = [];
  const inventorySchema = () => `"${platform.schemas['inventory-service']}"`;

  beforeAll(async () => {
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'services/console/tsconfig.web.json'], { cwd: ROOT });
    mkdirSync(SHOTS, { recursive: true });
    await platform.start();
    nc = await testNats();
    jsm = await jetstreamManager(nc);
    // What the operator does in a cluster: copy messages that hit max_deliver to their DLQ subject.
    const topo = platformTopology({ namespace: platform.ns });
    copier = createAdvisoryCopier({
      nc,
      js: jetstream(nc),
      jsm,
      lookup: deadLetterLookup(topo.consumers),
      log: createLogger('copier', 'silent'),
      queue: `copier-${platform.ns}`,
    });
    copier.start();

    const log = createLogger('console', 'info', {
      write(line: string) {
        const j = JSON.parse(line) as Record<string, unknown>;
        if (j.audit) audit.push(j);
      },
    });
    con = await startConsole({
      hostname: '127.0.0.1',
      log,
      sampleMs: 1000,
      scrapeMs: 1000,
      env: {
        PORT: '0',
        NATS_URL: TEST_NATS_URL,
        ORDERFLOW_NAMESPACE: platform.ns,
        ORDER_SERVICE_URL: platform.url('order-service'),
        INVENTORY_SERVICE_URL: platform.url('inventory-service'),
        PAYMENT_SERVICE_URL: platform.url('payment-service'),
        CONSOLE_TOKEN: TOKEN,
        JAEGER_UI_URL: JAEGER,
      },
    });
    await waitFor('console ready', async () => (await fetch(`${con.url}/ready`)).ok, 15_000);

    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install chromium (or set CHROMIUM_BIN)`);
    userDataDir = mkdtempSync(join(tmpdir(), 'console-chromium-'));
    // A fresh profile per run (playwright passes it as --user-data-dir).
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1366, height: 900 },
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
  });

  afterAll(async () => {
    await ctx?.close().catch(() => undefined);
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await con?.stop();
    await copier?.stop();
    await nc?.close();
    await platform.stop();
  });

  const api = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${con.url}/api${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status, path).toBe(200);
    return (await r.json()) as T;
  };
  type DlqBody = {
    total: number;
    groups: Array<{
      consumer: string;
      entries: Array<{ seq: number; reason: string; orderId?: string; correlationId?: string; deliveries: number }>;
    }>;
  };
  const deadLetters = async () =>
    (await api<DlqBody>('/dlq')).groups.flatMap((g) => g.entries.map((e) => ({ ...e, consumer: g.consumer })));

  let victim = '';
  const confirmed: string[] = [];

  test('orders, a poison message and a failing handler leave the platform in a known state', async () => {
    await platform.setStock('sku-a', 100, 10);
    await platform.setStock('sku-flaky', 10, 5);
    for (let i = 0; i < 3; i++) confirmed.push((await platform.placeOrder(`cust-${i}`, [{ productId: 'sku-a', quantity: 1 }])).orderId!);
    const short = (await platform.placeOrder('cust-big', [{ productId: 'sku-a', quantity: 1000 }])).orderId!;
    const final = await platform.waitFinal([...confirmed, short]);
    expect([...final.values()].map((f) => f.status).sort()).toEqual(['cancelled', 'confirmed', 'confirmed', 'confirmed']);
    expect(final.get(short)).toEqual({ status: 'cancelled', reason: 'out_of_stock' });

    // 1. Poison: an orders.created that fails its schema is dead-lettered at once (no retries).
    const h = natsHeaders();
    h.set('Nats-Msg-Id', randomUUID());
    h.set('Event-Type', 'orders.created');
    h.set('Event-Version', 'v1');
    h.set('X-Correlation-ID', 'poison-corr-1');
    await jetstream(nc).publish(
      `${platform.ns}.orders.created`,
      new TextEncoder().encode(JSON.stringify({ version: 'v1', orderId: 'not-a-uuid', items: 'lots' })),
      { headers: h },
    );

    // 2. A valid order whose reservation fails on every delivery: inventory's database refuses
    //    updates of sku-flaky. Two deliveries allowed here (5 with 1-30 s backoff in production).
    const ordersStream = `${platform.ns.toUpperCase()}_ORDERS`;
    await jsm.consumers.update(ordersStream, 'inventory-orders', { max_deliver: 2, backoff: [200_000_000] });
    await platform.query(
      'inventory-service',
      `CREATE FUNCTION ${inventorySchema()}.warehouse_offline() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        RAISE EXCEPTION 'warehouse system offline for %', NEW.product_id; END $$`,
    );
    await platform.query(
      'inventory-service',
      `CREATE TRIGGER warehouse_offline BEFORE UPDATE ON ${inventorySchema()}.products FOR EACH ROW WHEN
        (NEW.product_id = 'sku-flaky') EXECUTE FUNCTION ${inventorySchema()}.warehouse_offline()`,
    );
    victim = (await platform.placeOrder('cust-flaky', [{ productId: 'sku-flaky', quantity: 2 }], { 'X-Correlation-ID': 'flaky-corr-1' }))
      .orderId!;

    const dls = await waitFor(
      'two dead letters',
      async () => {
        const d = await deadLetters();
        return d.length >= 2 && d.some((e) => e.orderId === victim) ? d : undefined;
      },
      30_000,
      250,
    );
    expect(dls.find((e) => e.correlationId === 'poison-corr-1')).toMatchObject({
      consumer: 'inventory-orders',
      reason: expect.stringContaining('invalid orders.created'),
    });
    expect(dls.find((e) => e.orderId === victim)).toMatchObject({ consumer: 'inventory-orders', reason: 'max_deliveries', deliveries: 2 });
    expect((await platform.order(victim)).status).toBe('pending');
  });

  test('the page asks for the token, then the overview shows counts, cancel reasons and latency', async () => {
    await page.goto(`${con.url}/#overview`);
    await page.getByLabel('Token', { exact: true }).waitFor();
    await page.getByLabel('Token', { exact: true }).fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const statusRow = (s: string) => page.locator(`[data-testid="status-${s}"] td.num`).nth(1);
    await waitFor(
      'overview counts',
      async () => (await statusRow('confirmed').textContent()) === '3' && (await statusRow('cancelled').textContent()) === '1',
      15_000,
      200,
    );
    expect(await statusRow('pending').textContent()).toBe('1');
    await waitFor(
      'cancel reason',
      async () => (await page.locator('[data-testid="reason-out_of_stock"] td.num').textContent({ timeout: 1000 })) === '1',
      10_000,
      200,
    );
    await waitFor(
      'latency from the histogram',
      async () =>
        /p50/.test((await page.locator('[data-testid="latency"]').textContent()) ?? '') &&
        !(await page.locator('[data-testid="latency"]').textContent())?.includes('—'),
      10_000,
      200,
    );
    await waitFor('dlq total', async () => (await page.locator('[data-testid="dlq-total"] strong').textContent()) === '2', 10_000, 200);
    await expect(page.getByRole('img', { name: /Orders per minute/ }).count()).resolves.toBe(1);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
  });

  test('streams & consumers: per-stream counts, per-consumer pending/ack pending/redelivered, resource names', async () => {
    await page.getByRole('link', { name: 'Streams & consumers' }).click();
    const orders = page.locator(`[data-testid="stream-${platform.ns.toUpperCase()}_ORDERS"]`);
    await orders.waitFor();
    await waitFor(
      'orders stream count',
      async () => Number((await orders.locator('[data-testid="messages"]').textContent())?.replace(/,/g, '')) >= 6,
      10_000,
      200,
    );
    const inv = orders.locator('[data-testid="consumer-inventory-orders"]');
    await inv.waitFor();
    const cells = await inv.locator('td').allTextContents();
    expect(cells[0]).toBe(`${platform.ns}.orders.>`);
    expect(Number(cells[4])).toBeGreaterThanOrEqual(1); // the failed delivery of the victim was redelivered
    expect(cells[6]).toBe(`${platform.ns.replace(/_/g, '-')}-orders-inventory-orders`);
    expect(await orders.textContent()).toContain(`Stream resource ${platform.ns.replace(/_/g, '-')}-orders`);
    await page.screenshot({ path: join(SHOTS, 'streams.png'), fullPage: true });
  });

  test(
    'dead letters: both entries with reason, subject and deliveries; replay sends the valid one back and the ' + 'order confirms',
    async () => {
      await page.getByRole('link', { name: /Dead letters/ }).click();
      const group = page.locator('[data-testid="dlq-group-inventory-orders"]');
      await group.waitFor();
      const d = await deadLetters();
      const valid = d.find((e) => e.orderId === victim)!;
      const poison = d.find((e) => e.correlationId === 'poison-corr-1')!;
      const validRow = page.locator(`[data-testid="dead-letter-${valid.seq}"]`);
      const poisonRow = page.locator(`[data-testid="dead-letter-${poison.seq}"]`);
      await validRow.waitFor();
      expect(await validRow.textContent()).toContain('max_deliveries');
      expect(await validRow.textContent()).toContain(`${platform.ns}.orders.created`);
      expect(await poisonRow.textContent()).toContain('invalid orders.created');
      // Headers and the pretty-printed payload of the poison message.
      await poisonRow.getByRole('button', { name: 'Show' }).click();
      const payload = page.getByLabel(`Payload of dead letter ${poison.seq}`);
      await payload.waitFor();
      expect(await payload.textContent()).toContain('"orderId": "not-a-uuid"');
      expect(await page.locator(`#dl-${poison.seq}-details`).textContent()).toContain('Dlq-Reason');
      await page.screenshot({ path: join(SHOTS, 'dead-letters.png'), fullPage: true });

      // While dead-lettered, the order's timeline shows the DLQ copy with its reason.
      const before = await api<{ orders: Array<{ events: Array<{ type: string; deadLetter?: { reason: string; consumer: string } }> }> }>(
        `/orders/lookup?q=${victim}`,
      );
      expect(before.orders[0]!.events.find((e) => e.deadLetter)).toMatchObject({
        type: 'orders.created',
        deadLetter: { reason: 'max_deliveries', consumer: 'inventory-orders' },
      });

      // Fix the cause, then replay through the page.
      await platform.query('inventory-service', `DROP TRIGGER warehouse_offline ON ${inventorySchema()}.products`);
      await validRow.getByRole('button', { name: `Replay dead letter ${valid.seq}` }).click();
      await validRow.waitFor({ state: 'detached', timeout: 10_000 });
      await page.getByText(`Replayed dead letter ${valid.seq}`).waitFor();
      const final = await platform.waitFinal([victim], 30_000);
      expect(final.get(victim)).toEqual({ status: 'confirmed' });
      expect((await deadLetters()).map((e) => e.seq)).toEqual([poison.seq]);

      // Discard asks first; Cancel keeps the entry, Confirm drops it.
      await poisonRow.getByRole('button', { name: `Discard dead letter ${poison.seq}` }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
      expect(await poisonRow.count()).toBe(1);
      await poisonRow.getByRole('button', { name: `Discard dead letter ${poison.seq}` }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Discard' }).click();
      await poisonRow.waitFor({ state: 'detached', timeout: 10_000 });
      expect(await deadLetters()).toEqual([]);

      expect(audit.map((a) => [a.action, a.ok, a.seq])).toEqual([
        ['dlq.replay', true, valid.seq],
        ['dlq.discard', true, poison.seq],
      ]);
      expect(audit[0]).toMatchObject({
        actor: { auth: 'token' },
        orderId: victim,
        originalSubject: `${platform.ns}.orders.created`,
        consumer: 'inventory-orders',
      });
    },
  );

  test('order lookup: the timeline of the replayed order across the streams, with trace links', async () => {
    await page.getByRole('link', { name: 'Order lookup' }).click();
    await page.getByLabel('Order id or correlation id').fill(victim);
    await page.getByRole('button', { name: 'Look up' }).click();
    const card = page.locator(`[data-testid="order-${victim}"]`);
    await card.waitFor({ timeout: 15_000 });
    await waitFor(
      'confirmed in the timeline',
      async () => (await card.locator('[data-testid="event-orders.confirmed"]').count()) === 1,
      10_000,
      200,
    );
    const types = await card.locator('.timeline li strong').allTextContents();
    expect(types.filter((t) => t === 'orders.created').length).toBe(2); // the original and the replay (its DLQ copy is gone)
    for (const t of ['inventory.reserved', 'payments.completed', 'orders.confirmed']) expect(types, t).toContain(t);
    expect(await card.locator('[data-testid="order-status"]').textContent()).toBe('confirmed');
    expect(await card.textContent()).toContain('replayed');
    const link = card.locator('[data-testid="trace-link"]').first();
    expect(await link.getAttribute('href')).toMatch(new RegExp(`^${JAEGER}/trace/[0-9a-f]{32}$`));
    await page.screenshot({ path: join(SHOTS, 'order-lookup.png'), fullPage: true });

    // By correlation id too.
    await page.getByLabel('Order id or correlation id').fill('flaky-corr-1');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.locator(`[data-testid="order-${victim}"]`).waitFor({ timeout: 15_000 });
  });
});
