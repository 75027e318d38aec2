/**
 * With CONSOLE_TOKEN set, every console API answers 401 problem+json without the token (or with
 * a wrong one), while the page, its script and the probes stay public.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_NATS_URL, testNamespace, waitFor } from '@orderflow/kit/testing';
import { startConsole, type RunningConsole } from '../../services/console/src/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOKEN = 's3cret-console-token';

const API: Array<[string, string]> = [
  ['GET', '/api/overview'],
  ['GET', '/api/streams'],
  ['GET', '/api/dlq'],
  ['GET', '/api/dlq/1'],
  ['POST', '/api/dlq/1/replay'],
  ['POST', '/api/dlq/replay-all'],
  ['POST', '/api/dlq/1/discard'],
  ['GET', '/api/orders/lookup?q=abc'],
  ['GET', '/api/no-such-route'],
];

describe('console bearer token', () => {
  let con: RunningConsole;

  beforeAll(async () => {
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', 'services/console/tsconfig.web.json'], { cwd: ROOT });
    // Services are not running: the token check comes before any upstream call.
    con = await startConsole({
      hostname: '127.0.0.1',
      env: {
        PORT: '0',
        NATS_URL: TEST_NATS_URL,
        ORDERFLOW_NAMESPACE: testNamespace('con'),
        CONSOLE_TOKEN: TOKEN,
        LOG_LEVEL: 'silent',
        ORDER_SERVICE_URL: 'http://127.0.0.1:9',
      },
    });
    await waitFor('console ready', async () => (await fetch(`${con.url}/ready`)).ok, 15_000);
  });
  afterAll(async () => {
    await con?.stop();
  });

  test.each(API)('%s %s without a token answers 401 problem+json', async (method, path) => {
    const r = await fetch(`${con.url}${path}`, { method });
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(((await r.json()) as { status: number }).status).toBe(401);
  });

  test.each(API)('%s %s with a wrong token answers 401', async (method, path) => {
    const r = await fetch(`${con.url}${path}`, { method, headers: { authorization: 'Bearer not-the-token' } });
    expect(r.status).toBe(401);
  });

  test('with the token the API answers (whatever the upstream state)', async () => {
    for (const [method, path] of API) {
      const r = await fetch(`${con.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
      expect(r.status, `${method} ${path}`).not.toBe(401);
    }
    const o = await fetch(`${con.url}/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(o.status).toBe(200);
  });

  test('the page, its script and the probes need no token; the page tells the client a token is required', async () => {
    const page = await fetch(`${con.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-token-required="true"');
    const js = await fetch(`${con.url}/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
    for (const p of ['/health', '/ready', '/metrics']) expect((await fetch(`${con.url}${p}`)).status, p).toBe(200);
  });
});
