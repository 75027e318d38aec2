/**
 * Checks the platform's invariants after a run (see test/support/invariants.ts) and prints the
 * report as JSON; exit 1 on any violation.
 *
 *   npx tsx scripts/check-invariants.ts --database-url postgres://… [--namespace e2e_abc]
 *     [--order-schema S --inventory-schema S --payment-schema S] [--nats nats://a,nats://b]
 *     [--gateway http://127.0.0.1:3004] [--initial sku-1=100,sku-2=50] [--expect-poison id1,id2]
 *     [--accepted-file ids.txt] [--wait-ms 60000]
 *
 * Schemas default to `<namespace>_order|_inventory|_payment` with a namespace (the test harness's
 * naming), else the services' own defaults (order_service, …). NATS user/password come from
 * NATS_USER / NATS_PASSWORD. Without --accepted-file every order in the database must be final.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkInvariants, waitQuiescent, type InvariantInput } from '../test/support/invariants.js';

const { values: a } = parseArgs({
  options: {
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    namespace: { type: 'string', default: process.env.ORDERFLOW_NAMESPACE ?? '' },
    'order-schema': { type: 'string' },
    'inventory-schema': { type: 'string' },
    'payment-schema': { type: 'string' },
    nats: { type: 'string', default: process.env.NATS_URL },
    gateway: { type: 'string' },
    initial: { type: 'string' },
    'expect-poison': { type: 'string' },
    'accepted-file': { type: 'string' },
    'wait-ms': { type: 'string' },
  },
});

const ns = a.namespace ?? '';
const schema = (kind: 'order' | 'inventory' | 'payment', given: string | undefined) => given ?? (ns ? `${ns}_${kind}` : `${kind}_service`);
const list = (s: string | undefined) =>
  s
    ? s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : undefined;
const input: InvariantInput = {
  databaseUrl: a['database-url']!,
  schemas: {
    order: schema('order', a['order-schema']),
    inventory: schema('inventory', a['inventory-schema']),
    payment: schema('payment', a['payment-schema']),
  },
  gatewayUrl: a.gateway,
  nats: a.nats ? { servers: list(a.nats)!, user: process.env.NATS_USER, pass: process.env.NATS_PASSWORD } : undefined,
  namespace: ns,
  accepted: a['accepted-file'] ? readFileSync(a['accepted-file'], 'utf8').split(/\s+/).filter(Boolean) : undefined,
  initialStock: a.initial
    ? Object.fromEntries(
        list(a.initial)!.map((kv) => {
          const [k, v] = kv.split('=');
          return [k!, Number(v)];
        }),
      )
    : undefined,
  expectedPoison: list(a['expect-poison']),
};

if (a['wait-ms']) {
  const ms = await waitQuiescent(input, Number(a['wait-ms']), (m) => console.error(m)).catch(
    (err: Error) => (console.error(err.message), -1),
  );
  console.error(ms >= 0 ? `quiescent after ${ms} ms` : 'not quiescent; checking anyway');
}
const report = await checkInvariants(input);
console.log(JSON.stringify(report, null, 2));
process.exitCode = report.ok ? 0 : 1;
