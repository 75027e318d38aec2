import { afterAll, beforeAll, expect, test } from 'vitest';
import { startService, type RunningService } from '@orderflow/kit';
import { deleteNamespaceStreams, testNamespace, testNats, waitFor } from '@orderflow/kit/testing';
import { orderService } from '../src/index.js';

const ns = testNamespace();
let svc: RunningService;
beforeAll(async () => {
  svc = await startService(orderService(), { env: { PORT: '0', ORDERFLOW_NAMESPACE: ns, LOG_LEVEL: 'warn' } , db: undefined });
});
afterAll(async () => {
  await svc?.stop();
  const nc = await testNats();
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});
test('smoke', async () => {
  await waitFor('ready', async () => (await fetch(`${svc.url}/ready`)).ok);
  const r = await fetch(`${svc.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ customerId: 'c1', items: [{ productId: 'sku-1', quantity: 2 }] }) });
  expect(r.status).toBe(202);
  const { orderId } = await r.json() as { orderId: string };
  const g = await fetch(`${svc.url}/orders/${orderId}`);
  expect(await g.json()).toMatchObject({ status: 'pending' });
  const info = await waitFor('msg', async () => { const i = await svc.ctx.nats.current!.jsm.streams.info(`${ns.toUpperCase()}_ORDERS`); return i.state.messages === 1 ? i : undefined; });
  expect(info.state.messages).toBe(1);
});
