/**
 * natsAuth.perService: the chart gives every NATS-using workload its own NATS user and Secret,
 * with the user names of charts/orderflow/files/nats-auth.conf (test/support/nats-auth.ts, proven
 * against a real nats-server in test/security/nats-auth.test.ts), and values-nats-auth.yaml hands
 * the official nats chart that conf plus the passwords from those same Secrets. The shared-user
 * mode (default off) keeps rendering as before.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { render as helmRender, renderFailure, lint, mergeValues, valuesFile, NATS_AUTH_PASSWORDS, type Dict } from './helm.js';
import { SERVICE_USERS } from '../support/nats-auth.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const chartDir = join(root, 'charts', 'orderflow');
const conf = readFileSync(join(chartDir, 'files', 'nats-auth.conf'), 'utf8');
const overlay = YAML.parse(readFileSync(join(chartDir, 'values-nats-auth.yaml'), 'utf8')) as Dict;

const BASE: Dict = { database: { url: 'postgres://u:p@db:5432/orderflow' }, sandboxGateway: { enabled: true } };
const PER_SERVICE = mergeValues(mergeValues(BASE, { natsAuth: { perService: true } }), NATS_AUTH_PASSWORDS);

const SAGA = ['order-service', 'inventory-service', 'payment-service'] as const;
const NATS_WORKLOADS = [...SAGA, 'console', 'operator'] as const;

/** Users and password variables declared in the conf: user -> variable name. */
const confUsers = new Map([...conf.matchAll(/user:\s*"([^"]+)"\s*\n\s*password:\s*\$(\w+)/g)].map((m) => [m[1]!, m[2]!]));

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
const render = (values: Dict) => helmRender([values]);
const named = (docs: Dict[], kind: string) =>
  new Map(docs.filter((d) => d.kind === kind).map((d) => [String((d.metadata as Dict).name), d]));

/** Workload (app.kubernetes.io/name) -> its container's env. */
function envOf(docs: Dict[]): Map<string, EnvVar[]> {
  const out = new Map<string, EnvVar[]>();
  for (const d of docs.filter((x) => x.kind === 'Deployment')) {
    const w = ((d.metadata as Dict).labels as Record<string, string>)['app.kubernetes.io/name']!;
    const spec = ((d.spec as Dict).template as { spec: { containers: { env?: EnvVar[] }[] } }).spec;
    out.set(
      w,
      spec.containers.flatMap((c) => c.env ?? []),
    );
  }
  return out;
}

/** The Secret a workload's NATS_USER and NATS_PASSWORD come from (both must name the same one). */
function natsSecretOf(env: EnvVar[] | undefined): string | undefined {
  const user = env?.find((e) => e.name === 'NATS_USER')?.valueFrom?.secretKeyRef;
  const pass = env?.find((e) => e.name === 'NATS_PASSWORD')?.valueFrom?.secretKeyRef;
  if (!user && !pass) return undefined;
  expect(user).toMatchObject({ key: 'NATS_USER' });
  expect(pass).toMatchObject({ key: 'NATS_PASSWORD', name: user!.name });
  return user!.name;
}

const decode = (secret: Dict | undefined, key: string) =>
  Buffer.from(String((secret?.data as Dict | undefined)?.[key] ?? ''), 'base64').toString('utf8');

describe('natsAuth.perService: one NATS user and Secret per workload', () => {
  const docs = render(PER_SERVICE);
  const env = envOf(docs);
  const secrets = named(docs, 'Secret');

  it('each saga workload reads its own Secret, whose user is its user in nats-auth.conf; no two share a Secret or a user', () => {
    const seen = new Map<string, string>();
    for (const w of SAGA) {
      const name = natsSecretOf(env.get(w));
      expect(name, w).toBe(`orderflow-nats-${w}`);
      const secret = secrets.get(name!);
      expect(secret, `${w}: Secret ${name} rendered`).toBeDefined();
      const user = decode(secret, 'NATS_USER');
      expect(user, w).toBe(SERVICE_USERS[w]);
      expect(confUsers.has(user), `${user} is a user in files/nats-auth.conf`).toBe(true);
      expect(decode(secret, 'NATS_PASSWORD'), w).toMatch(/^pw-/);
      expect(seen.has(name!), `${w} shares Secret ${name} with ${seen.get(name!)}`).toBe(false);
      seen.set(name!, w);
    }
    const users = SAGA.map((w) => decode(secrets.get(natsSecretOf(env.get(w))!), 'NATS_USER'));
    expect(new Set(users).size).toBe(SAGA.length);
  });

  it("console and operator get their own Secrets with the conf's admin user; the sandbox gateway (no NATS) gets none", () => {
    for (const w of ['console', 'operator']) {
      const name = natsSecretOf(env.get(w));
      expect(name, w).toBe(`orderflow-nats-${w}`);
      expect(decode(secrets.get(name!), 'NATS_USER'), w).toBe('admin');
    }
    expect(confUsers.has('admin')).toBe(true);
    expect(env.get('sandbox-gateway')).toBeDefined();
    expect(natsSecretOf(env.get('sandbox-gateway'))).toBeUndefined();
  });

  it('the shared Secret carries no NATS credentials', () => {
    const shared = secrets.get('orderflow-secrets');
    expect(Object.keys((shared?.data ?? {}) as Dict)).toEqual(['DATABASE_URL']);
  });

  it("user-supplied Secrets per workload replace the chart's", () => {
    const own = render(
      mergeValues(mergeValues(BASE, { natsAuth: { perService: true } }), {
        natsAuth: {
          services: Object.fromEntries(
            ['orderService', 'inventoryService', 'paymentService', 'console', 'operator'].map((k) => [k, { existingSecret: `my-${k}` }]),
          ),
        },
      }),
    );
    const e = envOf(own);
    expect(NATS_WORKLOADS.map((w) => natsSecretOf(e.get(w)))).toEqual([
      'my-orderService',
      'my-inventoryService',
      'my-paymentService',
      'my-console',
      'my-operator',
    ]);
    expect([...named(own, 'Secret').keys()].filter((n) => n.includes('-nats-'))).toEqual([]);
  });

  it('a disabled workload needs no credentials and gets no Secret', () => {
    const v = mergeValues(PER_SERVICE, { console: { enabled: false }, natsAuth: { services: { console: { password: '' } } } });
    const d = render(v);
    expect(named(d, 'Secret').has('orderflow-nats-console')).toBe(false);
    expect(named(d, 'Secret').has('orderflow-nats-operator')).toBe(true);
  });

  it.each([
    [
      'a missing password',
      mergeValues(PER_SERVICE, { natsAuth: { services: { paymentService: { password: '' } } } }),
      /natsAuth.services.paymentService.existingSecret, or its user and password/,
    ],
    [
      'the shared user as well',
      mergeValues(PER_SERVICE, { natsAuth: { user: 'orderflow', password: 'x' } }),
      /perService replaces the shared/,
    ],
    [
      'the shared existingSecret as well',
      mergeValues(PER_SERVICE, { natsAuth: { existingSecret: 'nats-auth' } }),
      /perService replaces the shared/,
    ],
    [
      'console and operator as admin with different passwords',
      mergeValues(PER_SERVICE, { natsAuth: { services: { console: { password: 'other' } } } }),
      /same password/,
    ],
  ])('refuses %s', (_name, values, re) => {
    expect(renderFailure([values])).toMatch(re);
  });
});

describe('shared-user mode (natsAuth.perService false, the default) is unchanged', () => {
  it('default values: no NATS credentials and no per-workload Secrets', () => {
    const docs = render(BASE);
    for (const [w, e] of envOf(docs)) expect(natsSecretOf(e), w).toBeUndefined();
    expect([...named(docs, 'Secret').keys()]).toEqual(['orderflow-secrets']);
  });

  it.each([
    ['natsAuth.user', { natsAuth: { user: 'orderflow', password: 'pw' } }, 'orderflow-secrets'],
    ['natsAuth.existingSecret', { natsAuth: { existingSecret: 'nats-auth' } }, 'nats-auth'],
  ])('%s: every workload, the sandbox gateway included, reads the one shared Secret', (_name, v, secret) => {
    const docs = render(mergeValues(BASE, v));
    const env = envOf(docs);
    expect(env.size).toBe(NATS_WORKLOADS.length + 1);
    for (const [w, e] of env) expect(natsSecretOf(e), w).toBe(secret);
    expect([...named(docs, 'Secret').keys()].filter((n) => n.includes('-nats-'))).toEqual([]);
  });
});

describe('values-nats-auth.yaml wires the bundled nats chart to the same users', () => {
  const nats = overlay.nats as {
    config: { merge: Dict };
    configMap: { merge: { data: Dict } };
    container: { env: Record<string, EnvVar> };
  };

  it('carries files/nats-auth.conf verbatim and includes it from nats.conf', () => {
    expect(nats.configMap.merge.data['nats-auth.conf'], 'copy charts/orderflow/files/nats-auth.conf into values-nats-auth.yaml').toBe(conf);
    const includes = Object.entries(nats.config.merge)
      .filter(([k]) => k.endsWith('$include'))
      .map(([, v]) => v);
    expect(includes).toEqual(['nats-auth.conf']);
  });

  it('sets every password variable of the conf from the Secret the chart renders for that user', () => {
    const docs = helmRender([BASE, { nats: { enabled: true } }, valuesFile('values-nats-auth.yaml'), NATS_AUTH_PASSWORDS]);
    const env = envOf(docs);
    const secrets = named(docs, 'Secret');
    expect(confUsers.size).toBe(4);
    expect(Object.keys(nats.container.env).sort()).toEqual([...confUsers.values()].sort());
    for (const [user, variable] of confUsers) {
      const ref = nats.container.env[variable]?.valueFrom?.secretKeyRef;
      expect(ref, variable).toMatchObject({ key: 'NATS_PASSWORD' });
      const workloads = NATS_WORKLOADS.filter((w) => natsSecretOf(env.get(w)) === ref!.name);
      expect(workloads.length, `${variable}: Secret ${ref!.name} is one a workload reads`).toBeGreaterThan(0);
      expect(decode(secrets.get(ref!.name), 'NATS_USER'), variable).toBe(user);
    }
  });

  it('passes helm lint --strict (values.schema.json included); the schema refuses unknown or mistyped natsAuth settings', () => {
    expect(lint([BASE, valuesFile('values-nats-auth.yaml'), NATS_AUTH_PASSWORDS])).toMatch(/0 chart\(s\) failed/);
    expect(renderFailure([PER_SERVICE, { natsAuth: { services: { console: { user: 'admin', token: 'x' } } } }])).toMatch(
      /schema[\s\S]*token/,
    );
    expect(renderFailure([BASE, { natsAuth: { perService: 'yes' } }])).toMatch(/schema[\s\S]*perService/);
  });
});
