/**
 * The metrics as an operator sees them: a real Prometheus scrapes the built services, the sandbox
 * gateway's payment-service and the operator (here without a Kubernetes API, so without a leader),
 * evaluating the shipped alert rules with every `for:` shortened to 2 s. The test drives orders
 * (confirmed, declined, out of stock), a poison message and a gateway that stops answering in
 * time, then asserts from Prometheus' own API: every target scraped cleanly (OpenMetrics), every
 * dashboard panel's query returns data, the alerts for those faults went pending and then fired,
 * the others never left inactive, and the e2e histogram's exemplars name traces Jaeger has.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { freePort, parseMetrics, TEST_DATABASE_URL, TEST_NATS_URL, testNats, waitFor } from '@orderflow/kit/testing';
import {
  ROOT,
  SAGA_SERVICES as SERVICES,
  otlpEnv,
  sagaChildren,
  startChild,
  startGatewayChild,
  startSagaServices,
  type Child,
  type SagaService as Svc,
} from './helpers.js';
import { TestJaeger } from './jaeger.js';
import { TestPrometheus } from './prometheus.js';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/tools.js';

/** The alerts this run must raise, and so see pending first wherever the rule has a `for:`. */
const EXPECTED = ['OrderflowDeadLettersArriving', 'OrderflowCircuitBreakerOpen', 'OrderflowChargesInDoubt', 'OrderflowOperatorNoLeader'];

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; for?: string }> }>;
}

interface Dashboard {
  panels: Array<{ title: string; targets?: Array<{ expr: string; legendFormat?: string }> }>;
}

/** The shipped rules with every `for:` at 2 s, so a test sees pending → firing without waiting minutes. */
function testRules(): RuleFile {
  const rules = YAML.parse(readFileSync(`${ROOT}charts/orderflow/files/prometheus-rules.yaml`, 'utf8')) as RuleFile;
  for (const g of rules.groups) for (const r of g.rules) if (r.for) r.for = '2s';
  return rules;
}

describe('Prometheus scraping the platform: dashboard queries and alerts', () => {
  const { ns, names, schemas, children, svc, stopChildren, removeNamespace } = sagaChildren<'operator'>('prom');
  const kubeDir = mkdtempSync(join(tmpdir(), 'orderflow-prom-kube-'));
  let jaeger: TestJaeger;
  let prom: TestPrometheus;
  let nc: NatsConnection;
  const rules = testRules();
  const alertNames = rules.groups.flatMap((g) => g.rules.map((r) => r.alert).filter((a): a is string => Boolean(a)));
  const metrics = async (s: Svc) => parseMetrics(await (await fetch(`${svc(s).url}/metrics`)).text());
  const postOrder = async (productId: string, quantity: number): Promise<string> => {
    const r = await fetch(`${svc('order-service').url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: 'cust-prom', items: [{ productId, quantity }] }),
    });
    expect(r.status).toBe(202);
    return ((await r.json()) as { orderId: string }).orderId;
  };
  const finalState = (orderId: string) =>
    waitFor(
      `order ${orderId} final`,
      async () => {
        const o = (await (await fetch(`${svc('order-service').url}/orders/${orderId}`)).json()) as {
          status: string;
          history: Array<{ reason?: string }>;
        };
        return ['confirmed', 'cancelled'].includes(o.status)
          ? `${o.status}${o.history.at(-1)?.reason ? `:${o.history.at(-1)!.reason}` : ''}`
          : undefined;
      },
      45_000,
      100,
    );

  beforeAll(async () => {
    jaeger = await TestJaeger.start();
    nc = await testNats();
    const otel = otlpEnv(jaeger.otlpHttpUrl);
    children['sandbox-gateway'] = await startGatewayChild({ ...otel, LOG_LEVEL: 'warn' });
    await startSagaServices(children, ns, {
      ...otel,
      PAYMENT_GATEWAY_URL: svc('sandbox-gateway').url,
      LOG_LEVEL: 'warn',
      // A gateway slower than this is "no answer": the charge is in doubt.
      GATEWAY_TIMEOUT_MS: '500',
      GATEWAY_RETRY_INITIAL_MS: '50',
      GATEWAY_RETRY_MAX_MS: '100',
      // Once open, the breaker stays open for the rest of the run.
      BREAKER_HALF_OPEN_AFTER_MS: '600000',
      PAYMENT_RECOVERY_INTERVAL_MS: '500',
    });
    // The operator with a Kubernetes API that is not there: it serves metrics but never leads.
    const kubeconfig = join(kubeDir, 'config');
    writeFileSync(
      kubeconfig,
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gone', cluster: { server: `https://127.0.0.1:${await freePort()}` } }],
        users: [{ name: 'gone', user: { token: 'none' } }],
        contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'gone', namespace: ns } }],
        'current-context': 'gone',
      }),
    );
    children.operator = await startChild(
      'operator',
      'operator/dist/main.js',
      await freePort(),
      { KUBECONFIG: kubeconfig, NATS_URL: TEST_NATS_URL, WATCH_NAMESPACE: ns, POD_NAMESPACE: ns, LOG_LEVEL: 'error' },
      '/health',
    );

    const hostPort = (c: Child) => c.url.replace('http://', '');
    prom = await TestPrometheus.start({
      jobs: [
        { job: 'orderflow', targets: SERVICES.map((s) => hostPort(svc(s))), labels: { namespace: ns } },
        { job: 'orderflow-operator', targets: [hostPort(svc('operator'))], labels: { namespace: ns, pod: 'operator-0' } },
      ],
      rules,
    });
    // Discovery hands targets over at most every 5 s: wait for all of them, scraped.
    await waitFor(
      'every target scraped',
      async () => {
        const t = await prom.targets();
        return t.length === SERVICES.length + 1 && t.every((x) => x.health === 'up');
      },
      30_000,
      200,
    );

    // One step at a time, each seen by a scrape before the next: a counter or histogram that is
    // born and incremented between two scrapes shows no increase, and its rate() stays 0.
    const outcomesSeen = async (n: number) =>
      waitFor(
        `Prometheus saw ${n} saga outcomes`,
        async () => Number((await prom.query(`sum(orderflow_saga_outcomes_total{namespace="${ns}"})`))[0]?.value[1] ?? -1) >= n,
        30_000,
        200,
      );
    await outcomesSeen(0);
    const tag = randomUUID().slice(0, 8);
    const put = (id: string, onHand: number, price: number) =>
      fetch(`${svc('inventory-service').url}/products/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ onHand, price }),
      });
    for (const [id, onHand, price] of [
      [`ok-${tag}`, 100, 10],
      [`big-${tag}`, 10, 6000],
      [`few-${tag}`, 1, 3],
    ] as const)
      expect((await put(id, onHand, price)).status).toBe(200);
    const steps: Array<[string, number, string]> = [
      [`ok-${tag}`, 1, 'confirmed'],
      [`ok-${tag}`, 2, 'confirmed'],
      [`big-${tag}`, 2, 'cancelled:payment_declined'],
      [`few-${tag}`, 5, 'cancelled:out_of_stock'],
    ];
    let outcomes = 0;
    for (const [productId, quantity, expected] of steps) {
      expect(await finalState(await postOrder(productId, quantity))).toBe(expected);
      await outcomesSeen(++outcomes);
    }

    // A handler that fails (a table it needs is gone, as after a bad migration): the message is
    // retried with backoff, not dead-lettered, and goes through once the table is back.
    const pg = new (await import('pg')).default.Client({ connectionString: TEST_DATABASE_URL });
    await pg.connect();
    try {
      await pg.query(`ALTER TABLE "${schemas['inventory-service']}".reservations RENAME TO reservations_away`);
      const orderId = await postOrder(`ok-${tag}`, 1);
      await waitFor(
        'Prometheus saw the handler failure',
        async () => (await prom.query(`orderflow_nats_failed_total{namespace="${ns}", kind="handler"}`)).length > 0,
        30_000,
        200,
      );
      await pg.query(`ALTER TABLE "${schemas['inventory-service']}".reservations_away RENAME TO reservations`);
      expect(await finalState(orderId)).toBe('confirmed');
      await outcomesSeen(++outcomes);
    } finally {
      await pg
        .query(`ALTER TABLE IF EXISTS "${schemas['inventory-service']}".reservations_away RENAME TO reservations`)
        .catch(() => undefined);
      await pg.end();
    }

    // A poison message: not JSON, on orders.created; inventory dead-letters it.
    await jetstream(nc).publish(names.subject('orders.created'), new TextEncoder().encode('not json at all'));
    await waitFor(
      'poison dead-lettered',
      async () => (await metrics('inventory-service')).total('orderflow_dead_lettered_total') > 0,
      30_000,
      200,
    );

    // The gateway stops answering in time: every attempt times out (in doubt: the charge may have
    // gone through), the breaker opens, and orders are cancelled gateway_unavailable.
    const cfg = await fetch(`${svc('sandbox-gateway').url}/admin/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ latencyMs: 5000 }),
    });
    expect(cfg.status).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect(await finalState(await postOrder(`ok-${tag}`, 1))).toBe('cancelled:gateway_unavailable');
      await outcomesSeen(++outcomes);
    }
    await waitFor(
      'breaker open',
      async () => (await metrics('payment-service')).total('orderflow_circuit_breaker_state') === 2,
      30_000,
      200,
    );
  }, TOOL_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await prom?.stop();
    await stopChildren();
    await jaeger?.stop();
    await removeNamespace(nc);
    rmSync(kubeDir, { recursive: true, force: true });
  });

  it('scrapes every service and the operator without errors (OpenMetrics from the services)', async () => {
    const targets = await prom.targets();
    expect(targets).toHaveLength(SERVICES.length + 1);
    for (const t of targets)
      expect({ url: t.scrapeUrl, health: t.health, lastError: t.lastError }).toEqual({ url: t.scrapeUrl, health: 'up', lastError: '' });
    // The services answered Prometheus' Accept with OpenMetrics: only that format carries exemplars.
    const r = await fetch(`${svc('order-service').url}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5' },
    });
    expect(r.headers.get('content-type')).toMatch(/^application\/openmetrics-text/);
  });

  it('answers every dashboard panel with data, labelled as its legend expects', async () => {
    const dashboard = JSON.parse(readFileSync(`${ROOT}charts/orderflow/dashboards/orderflow.json`, 'utf8')) as Dashboard;
    const queries = dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, legend: t.legendFormat ?? '', expr: t.expr })),
    );
    expect(queries.length).toBeGreaterThan(10);
    const failures: string[] = [];
    await waitFor(
      'every panel query answered',
      async () => {
        failures.length = 0;
        for (const q of queries) {
          // Grafana's variables: this run's namespace, and a rate window that covers the whole run.
          const expr = q.expr.replaceAll('$namespace', ns).replaceAll('$__rate_interval', '5m');
          const result = await prom.query(expr);
          const finite = result.filter((s) => Number.isFinite(Number(s.value[1])));
          if (finite.length === 0) failures.push(`${q.panel}: no data for ${expr}`);
          for (const label of [...q.legend.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!)) {
            if (result.some((s) => !s.metric[label]))
              failures.push(`${q.panel}: legend label ${label} missing in ${JSON.stringify(result.map((s) => s.metric))}`);
          }
        }
        return failures.length === 0;
      },
      30_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${failures.join('\n')}`);
    });
  }, 90_000);

  it('raises the alerts of the faults it drove, pending first where a rule waits, and no other', async () => {
    // ALERTS is Prometheus' own record of every pending and firing alert, kept in its TSDB.
    const states = async () => {
      const seen = await prom.query('max_over_time(ALERTS[1h])');
      const by = new Map<string, Set<string>>();
      for (const s of seen) {
        const set = by.get(s.metric.alertname!) ?? new Set<string>();
        set.add(s.metric.alertstate!);
        by.set(s.metric.alertname!, set);
      }
      return by;
    };
    const firing = await waitFor(
      'expected alerts firing',
      async () => {
        const now = await prom.alerts();
        const f = new Set(now.filter((a) => a.state === 'firing').map((a) => a.labels.alertname!));
        return EXPECTED.every((a) => f.has(a)) ? now : undefined;
      },
      60_000,
      500,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\nalerts: ${JSON.stringify(await prom.alerts())}`);
    });
    const seen = await states();
    const withFor = new Set(rules.groups.flatMap((g) => g.rules.filter((r) => r.for).map((r) => r.alert!)));
    for (const a of EXPECTED) {
      expect(seen.get(a), `${a} states`).toContain('firing');
      if (withFor.has(a)) expect(seen.get(a), `${a} was pending before it fired`).toContain('pending');
    }
    // The quiet ones never even went pending.
    expect([...seen.keys()].sort()).toEqual([...EXPECTED].sort());
    expect(alertNames.filter((a) => !EXPECTED.includes(a))).toEqual([
      'OrderflowOutboxLagging',
      'OrderflowConsumerFallingBehind',
      'OrderflowChargesUnresolved',
      'OrderflowSagaTimeoutsRising',
      'OrderflowServiceNotReady',
      'OrderflowOperatorReconcileFailing',
    ]);
    // Labels that say where to look.
    const byName = (n: string) => firing.filter((a) => a.labels.alertname === n && a.state === 'firing');
    expect(byName('OrderflowDeadLettersArriving').map((a) => a.labels.consumer)).toContain('inventory-orders');
    expect(byName('OrderflowCircuitBreakerOpen')[0]!.labels).toMatchObject({
      namespace: ns,
      service: 'payment-service',
      breaker: 'payment-gateway',
      severity: 'critical',
    });
    expect(byName('OrderflowChargesInDoubt')[0]!.labels).toMatchObject({ namespace: ns, severity: 'warning' });
    expect(byName('OrderflowOperatorNoLeader')[0]!.labels).toMatchObject({ namespace: ns, severity: 'critical' });
  }, 90_000);

  it("keeps trace-id exemplars on the e2e histogram that open the order's trace in Jaeger", async () => {
    const found = await waitFor(
      'exemplars stored',
      async () => {
        const ex = (await prom.exemplars(`orderflow_order_e2e_seconds_bucket{namespace="${ns}"}`)).flatMap((s) => s.exemplars);
        return ex.length > 0 ? ex : undefined;
      },
      20_000,
      500,
    );
    const traceId = found[0]!.labels.trace_id!;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const spans = await waitFor(
      'exemplar trace in Jaeger',
      async () => ((await jaeger.trace(traceId)).length > 0 ? jaeger.trace(traceId) : undefined),
      20_000,
      200,
    );
    expect(spans.some((s) => s.service === 'order-service')).toBe(true);
  });
});
