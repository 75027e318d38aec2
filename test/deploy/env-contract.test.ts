/**
 * Env contract: every environment variable the code reads (found by grepping services/*\/src and
 * operator/src, so the list follows the code) is set for the workloads that read it, in the
 * rendered chart and in the plain k8s/ manifests, unless the code's own default is right in a
 * cluster (OPTIONAL below, each with its reason, and each shown settable by some chart scenario).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { render, valuesFile, type Dict } from './helm.js';
import { yamlFiles, loadDocs } from './k8s-validate.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Read by the code, but fine to leave unset in some configurations (the chart sets them when configured). */
const OPTIONAL: Record<string, string> = {
  NATS_USER: 'only with user/password auth (natsAuth.user, natsAuth.existingSecret or natsAuth.perService)',
  NATS_PASSWORD: 'only with user/password auth',
  NATS_CREDS: 'only with decentralised auth (natsAuth.credsSecret)',
  NATS_TLS_CA: 'only with NATS TLS (natsAuth.tlsSecret)',
  NATS_TLS_CERT: 'only with NATS mTLS',
  NATS_TLS_KEY: 'only with NATS mTLS',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'tracing is off when unset; set by otel.endpoint or jaeger.enabled',
  OTEL_TRACES_SAMPLER_ARG: 'only for ratio samplers',
  PAYMENT_GATEWAY_URL: 'always set for payment-service (checked per workload below)',
  SEED_PRODUCTS: 'dev seeding only (inventoryService.seedProducts; on in values-dev.yaml)',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
    'only for a traces-only endpoint (otel.tracesEndpoint); OTEL_EXPORTER_OTLP_ENDPOINT covers the usual case',
  RATE_LIMIT_BURST: 'defaults to 2 × RATE_LIMIT_RPS (rateLimit.perIpBurst)',
  RATE_LIMIT_GLOBAL_BURST: 'defaults to 2 × RATE_LIMIT_GLOBAL_RPS (rateLimit.globalBurst)',
  CONSOLE_TOKEN: 'console without a token when unset (console.tokenSecret)',
  JAEGER_UI_URL: 'console trace links off when unset (console.jaegerUiUrl, or jaeger.enabled)',
  TRUSTED_PROXIES: 'only behind a proxy whose X-Forwarded-For is to be believed (trustedProxies)',
};
/**
 * Tuning with a code default that is right in a cluster too: left unset by the chart, settable per
 * workload through <workload>.env (shown by the "passthrough" scenario below).
 */
const PASSTHROUGH: Record<string, string> = {
  DB_STATEMENT_TIMEOUT_MS: 'statement_timeout, 30 s',
  DB_LOCK_TIMEOUT_MS: 'lock_timeout, 10 s',
  DB_IDLE_TX_TIMEOUT_MS: 'idle_in_transaction_session_timeout, 60 s',
  DB_KEEPALIVE_MS: 'TCP keepalive delay, 10 s',
  DB_CONNECT_TIMEOUT_MS: 'connect / pool wait, 5 s',
  DB_POOL_MAX: '10 connections per pod',
  PGOPTIONS: 'Postgres server settings for every connection (libpq form), none',
  NATS_REBUILD_TIMEOUT_MS: 'exit after 120 s without a usable NATS connection',
  HTTP_RETRY_AFTER_SECONDS: 'Retry-After of a 503, 5 s',
  OTEL_TRACES_EXPORTER: 'the SDK picks OTLP from OTEL_EXPORTER_OTLP_ENDPOINT',
  SANDBOX_CAPTURE_DELAY_MS: 'sandbox fault injection, off',
  SANDBOX_KEY_IN_USE: 'sandbox: a request with a key in flight waits for it',
  LEASE_DURATION_MS: 'operator leader lease, 15 s',
  LEASE_RENEW_DEADLINE_MS: 'operator lease renew deadline, 10 s',
  LEASE_RETRY_PERIOD_MS: 'operator lease retry, 2 s',
  PAYMENT_IN_DOUBT_CHECK_INITIAL_MS: 'first re-check of a charge in doubt, 10 s',
  PAYMENT_IN_DOUBT_CHECK_MAX_MS: 'longest re-check interval, 1 h',
  PAYMENT_IN_DOUBT_HORIZON_MS: 'give up re-checking after 24 h',
  PAYMENT_GATEWAY_MAX_PROCESSING_MS:
    "the gateway's request deadline, 60 s: past it an in-doubt charge with nothing captured is settled never_captured",
  SANDBOX_MAX_PROCESSING_MS: 'sandbox request deadline, 60 s: a charge not captured by then is dropped',
  REFUND_SWEEP_INTERVAL_MS: 'refund sweep every 30 s',
  REFUND_SWEEP_MARGIN_MS: 'refund sweep waits the saga timeout + 60 s',
  RESERVATION_SWEEP_INTERVAL_MS: 'reservation sweep interval',
  RESERVATION_SWEEP_MARGIN_MS: 'reservation sweep margin past the saga timeout',
  CONSUMER_HANDLER_TIMEOUT_MS: 'a handler is abandoned and rolled back after 30 s',
  CONSUMER_LINGER_MS: 'batching under middling load, up to 40 ms when company is likely (0: off)',
  OUTBOX_LINGER_MS: 'batching under light load, off (0)',
  ORDER_LINGER_MS: 'POSTs share a commit under middling load, up to 10 ms when company is likely (0: off)',
  ADVISORY_STREAM: 'the operator captures dead-letter advisories in ORDERFLOW_ADVISORIES',
};
/** `<NAME>_FILE`: the file form of a secret the chart hands over as an env var from a Secret. */
const isFileForm = (name: string) => name.endsWith('_FILE');
const optional = (name: string) => name in OPTIONAL || name in PASSTHROUGH || isFileForm(name);
/** Read by code but never meant for a deployment. */
const IGNORED = new Set(['NODE_ENV', 'CI', 'VITEST', 'HOME', 'PATH']);
const ignored = (name: string) => IGNORED.has(name) || name.startsWith('TEST_');

type Workload = 'order-service' | 'inventory-service' | 'payment-service' | 'sandbox-gateway' | 'operator' | 'console';
const SAGA: Workload[] = ['order-service', 'inventory-service', 'payment-service'];

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) {
      if (f !== 'testing' && f !== 'test' && f !== 'node_modules') out.push(...sourceFiles(p));
    } else if (/\.(ts|mts|js|mjs)$/.test(f) && !/\.(test|spec|d)\.[mc]?[tj]s$/.test(f)) out.push(p);
  }
  return out;
}

const PATTERNS = [
  /process\.env\.([A-Z][A-Z0-9_]*)/g,
  /process\.env\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\]/g,
  /\benv\.([A-Z][A-Z0-9_]*)/g,
  /\benv\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\]/g,
  /\b\w*[sS]etting\(\s*['"`]([A-Z][A-Z0-9_]*)['"`]/g,
];

/** Env var -> files reading it, for one source tree. */
function envReads(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of sourceFiles(dir)) {
    const text = readFileSync(f, 'utf8');
    for (const re of PATTERNS) {
      for (const m of text.matchAll(re)) {
        const name = m[1]!;
        if (ignored(name)) continue;
        out.set(name, [...new Set([...(out.get(name) ?? []), relative(root, f)])]);
      }
    }
  }
  return out;
}

/** What each workload must have set: its own reads, plus the kit's for the saga services. */
function required(): Map<Workload, Map<string, string[]>> {
  const kit = envReads(join(root, 'services', 'kit', 'src'));
  const out = new Map<Workload, Map<string, string[]>>();
  for (const w of [...SAGA, 'sandbox-gateway', 'operator', 'console'] as Workload[]) {
    const own = envReads(w === 'operator' ? join(root, 'operator', 'src') : join(root, 'services', w, 'src'));
    const merged = new Map(own);
    if (SAGA.includes(w)) for (const [k, v] of kit) merged.set(k, [...(merged.get(k) ?? []), ...v]);
    out.set(w, merged);
  }
  return out;
}

/** Env names each workload gets from a set of documents (env, envFrom ConfigMaps and Secrets). */
function provided(docs: Dict[]): Map<Workload, Set<string>> {
  const maps = new Map<string, string[]>();
  for (const d of docs) {
    if (d.kind === 'ConfigMap' || d.kind === 'Secret') {
      const keys = [...Object.keys((d.data ?? {}) as Dict), ...Object.keys((d.stringData ?? {}) as Dict)];
      maps.set(`${String(d.kind)}/${String((d.metadata as Dict).name)}`, keys);
    }
  }
  const out = new Map<Workload, Set<string>>();
  for (const d of docs.filter((x) => x.kind === 'Deployment')) {
    const labels = ((d.metadata as Dict).labels ?? {}) as Record<string, string>;
    const w = labels['app.kubernetes.io/name'] as Workload | undefined;
    if (!w) continue;
    const spec = (
      (d.spec as Dict).template as {
        spec: { containers: { env?: { name: string }[]; envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[] }[] };
      }
    ).spec;
    // Several containers or Deployments of one workload: union.
    const names = out.get(w) ?? new Set<string>();
    for (const c of spec.containers) {
      for (const e of c.env ?? []) names.add(e.name);
      for (const ef of c.envFrom ?? []) {
        const ref = ef.configMapRef ? `ConfigMap/${ef.configMapRef.name}` : ef.secretRef ? `Secret/${ef.secretRef.name}` : '';
        for (const k of maps.get(ref) ?? []) names.add(k);
      }
    }
    out.set(w, names);
  }
  return out;
}

const DB = { database: { url: 'postgres://u:p@db:5432/orderflow' } };
const SCENARIOS: Record<string, (Dict | string)[]> = {
  production: [DB, { paymentService: { gatewayUrl: 'https://payments.example.com' } }],
  dev: [valuesFile('values-dev.yaml'), DB],
  auth: [
    DB,
    {
      nats: { enabled: false, url: 'tls://nats.example.com:4222' },
      natsAuth: { existingSecret: 'nats-auth', credsSecret: 'nats-creds', tlsSecret: 'nats-tls' },
      otel: {
        endpoint: 'http://collector:4318',
        tracesSampler: 'parentbased_traceidratio',
        tracesSamplerArg: '0.1',
        tracesEndpoint: 'http://collector:4318/v1/traces',
      },
      rateLimit: { perIpRps: 50, perIpBurst: 100, globalRps: 2000, globalBurst: 4000 },
      trustedProxies: '10.0.0.0/8,fd00::/8',
      sandboxGateway: { enabled: true },
      console: { tokenSecret: 'console-token' },
    },
  ],
  // Every PASSTHROUGH variable through each service's `env`.
  passthrough: [
    DB,
    { sandboxGateway: { enabled: true } },
    Object.fromEntries(
      ['orderService', 'inventoryService', 'paymentService', 'sandboxGateway', 'console', 'operator'].map((k) => [
        k,
        { env: Object.fromEntries(Object.keys(PASSTHROUGH).map((v) => [v, '1'])) },
      ]),
    ),
  ],
};
const rendered = Object.fromEntries(Object.entries(SCENARIOS).map(([k, v]) => [k, provided(render(v))]));

describe('env contract (derived from the code)', () => {
  const req = required();

  it('finds the variables the kit reads (sanity check of the grep)', () => {
    const kit = req.get('order-service')!;
    for (const v of ['NATS_URL', 'DATABASE_URL', 'SHUTDOWN_TIMEOUT_MS', 'ENSURE_STREAMS', 'ORDERFLOW_NAMESPACE', 'PORT', 'LOG_LEVEL']) {
      expect([...kit.keys()], v).toContain(v);
    }
  });

  it.each(Object.keys(SCENARIOS))('chart (%s): every variable a workload reads is set for it, unless optional', (scenario) => {
    const missing: string[] = [];
    for (const [w, vars] of req) {
      const got = rendered[scenario]!.get(w);
      if (!got) continue; // workload disabled in this scenario
      for (const [name, files] of vars) {
        if (!got.has(name) && !optional(name)) missing.push(`${w}: ${name} (read in ${files.join(', ')})`);
      }
    }
    expect(missing, 'set these in charts/orderflow (configmap.yaml / _pod.tpl / services.yaml) or document them in OPTIONAL').toEqual([]);
  });

  it('every optional variable is settable for its workloads by some chart values', () => {
    const missing: string[] = [];
    for (const [w, vars] of req) {
      for (const name of vars.keys()) {
        if (!(name in OPTIONAL) && !(name in PASSTHROUGH)) continue;
        if (!Object.values(rendered).some((r) => r.get(w)?.has(name))) missing.push(`${w}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('the platform env the services are specified to read is set by the chart', () => {
    const p = rendered.production!;
    for (const w of SAGA) {
      for (const v of [
        'PORT',
        'NATS_URL',
        'DATABASE_URL',
        'DATABASE_SCHEMA',
        'LOG_LEVEL',
        'OTEL_SERVICE_NAME',
        'OTEL_TRACES_SAMPLER',
        'ORDERFLOW_NAMESPACE',
        'ENSURE_STREAMS',
        'SHUTDOWN_TIMEOUT_MS',
      ]) {
        expect([...p.get(w)!], `${w} ${v}`).toContain(v);
      }
    }
    expect([...p.get('order-service')!]).toContain('SAGA_TIMEOUT_MS');
    expect([...p.get('payment-service')!]).toContain('PAYMENT_GATEWAY_URL');
    for (const v of ['SANDBOX_DECLINE_OVER', 'SANDBOX_FAILURE_RATE', 'SANDBOX_LATENCY_MS', 'PORT'])
      expect([...rendered.dev!.get('sandbox-gateway')!]).toContain(v);
    for (const v of ['PORT', 'NATS_URL', 'WATCH_NAMESPACE', 'LEASE_NAME', 'POD_NAME']) expect([...p.get('operator')!]).toContain(v);
  });

  it('k8s/ plain manifests set every variable a workload reads, unless optional', () => {
    const docs = yamlFiles(join(root, 'k8s'))
      .flatMap((f) => loadDocs(f, root))
      .map((d) => d.doc);
    const got = provided(docs);
    const missing: string[] = [];
    for (const [w, vars] of req) {
      const names = got.get(w);
      expect(names, `k8s/ has a Deployment for ${w}`).toBeDefined();
      for (const name of vars.keys()) if (!names!.has(name) && !optional(name)) missing.push(`${w}: ${name}`);
    }
    expect(missing, 'regenerate with npx tsx scripts/gen-k8s-manifests.ts after fixing the chart').toEqual([]);
  });
});
