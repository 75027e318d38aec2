/**
 * The alert rules as shipped: `promtool check rules` accepts the plain rules file, `promtool test
 * rules` runs monitoring/prometheus-rules.test.yaml (every alert firing on its fault, quiet on the
 * look-alike), and the chart's PrometheusRule carries exactly those groups.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { render } from '../deploy/helm.js';
import { ROOT } from './helpers.js';
import { builtTool, TOOL_BUILD_TIMEOUT_MS } from '../support/tools.js';

const RULES = 'charts/orderflow/files/prometheus-rules.yaml';
const UNIT_TESTS = 'monitoring/prometheus-rules.test.yaml';

interface RuleGroups {
  groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; for?: string }> }>;
}
interface UnitTests {
  rule_files: string[];
  tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

const rules = YAML.parse(readFileSync(`${ROOT}${RULES}`, 'utf8')) as RuleGroups;
const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert).filter((a): a is string => Boolean(a)));

async function promtool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(builtTool('promtool'), args, { cwd: ROOT });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('alert rules', () => {
  it('are what the alerts list in docs/metrics.md names', () => {
    expect(alerts).toEqual([
      'OrderflowDeadLettersArriving',
      'OrderflowOutboxLagging',
      'OrderflowConsumerFallingBehind',
      'OrderflowCircuitBreakerOpen',
      'OrderflowChargesInDoubt',
      'OrderflowChargesUnresolved',
      'OrderflowSagaTimeoutsRising',
      'OrderflowServiceNotReady',
      'OrderflowOperatorNoLeader',
      'OrderflowOperatorReconcileFailing',
    ]);
    const doc = readFileSync(`${ROOT}docs/metrics.md`, 'utf8');
    for (const a of alerts) expect(doc, `docs/metrics.md explains ${a}`).toContain(`\`${a}\``);
  });

  it(
    'pass promtool check rules',
    async () => {
      const r = await promtool(['check', 'rules', RULES]);
      expect(r.out).toContain(`SUCCESS: ${rules.groups.reduce((n, g) => n + g.rules.length, 0)} rules found`);
      expect(r.code, r.out).toBe(0);
    },
    TOOL_BUILD_TIMEOUT_MS,
  );

  it(
    'are loaded by the dev Prometheus config (monitoring/prometheus.yml)',
    async () => {
      const r = await promtool(['check', 'config', 'monitoring/prometheus.yml']);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('SUCCESS: 1 rule files found');
    },
    TOOL_BUILD_TIMEOUT_MS,
  );

  it(
    'pass promtool test rules, which fire every alert on its fault and keep it quiet on a look-alike',
    async () => {
      const tests = YAML.parse(readFileSync(`${ROOT}${UNIT_TESTS}`, 'utf8')) as UnitTests;
      expect(tests.rule_files).toEqual([`../${RULES}`]);
      const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
      for (const a of alerts) {
        expect(
          cases.some((c) => c.alertname === a && (c.exp_alerts?.length ?? 0) > 0),
          `a case where ${a} fires`,
        ).toBe(true);
        expect(
          cases.some((c) => c.alertname === a && (c.exp_alerts?.length ?? 0) === 0),
          `a case where ${a} stays quiet`,
        ).toBe(true);
      }
      const r = await promtool(['test', 'rules', UNIT_TESTS]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('SUCCESS');
    },
    TOOL_BUILD_TIMEOUT_MS,
  );

  it('ship in the chart as a PrometheusRule with the same groups, when asked for', () => {
    const base = {
      database: { url: 'postgres://orderflow:pw@db:5432/orderflow' },
      paymentService: { gatewayUrl: 'https://payments.example.com' },
    };
    expect(render([base]).some((d) => d.kind === 'PrometheusRule')).toBe(false);
    const docs = render([base, { metrics: { prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } } } }], {
      release: 'shop',
      namespace: 'shop',
    });
    const pr = docs.filter((d) => d.kind === 'PrometheusRule');
    expect(pr).toHaveLength(1);
    expect(pr[0]).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      metadata: { labels: { release: 'kube-prometheus-stack', 'app.kubernetes.io/part-of': 'orderflow' } },
    });
    expect(pr[0]!.spec).toEqual(rules);
  });
});
