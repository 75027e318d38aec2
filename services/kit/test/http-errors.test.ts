import { expect, test } from 'vitest';
import { Hono } from 'hono';
import { createLogger, DependencyUnavailableError, errorHandler, HttpProblem } from '@orderflow/kit';

// What each kind of thrown error becomes at the one shared error handler.
const app = new Hono();
const errors: Record<string, () => Error> = {
  'pg-refused': () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
  'pg-terminated': () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
  'pg-lock-timeout': () => Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' }),
  'pool-exhausted': () => new Error('timeout exceeded when trying to connect'),
  'nats-timeout': () => Object.assign(new Error('timeout'), { name: 'TimeoutError' }),
  'nats-wrapped': () => new Error('publish failed', { cause: new DependencyUnavailableError('nats', 'not connected') }),
  problem: () => new HttpProblem(409, 'already there', { orderId: 'o-1' }),
  bug: () => new TypeError("Cannot read properties of undefined (reading 'x')"),
  constraint: () => Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }),
};
for (const [name, make] of Object.entries(errors)) {
  app.post(`/${name}`, () => {
    throw make();
  });
}
app.onError(errorHandler({ log: createLogger('test', 'silent'), retryAfterSeconds: 7 }));

async function call(name: string) {
  const r = await app.request(`/${name}`, { method: 'POST' });
  return {
    status: r.status,
    type: r.headers.get('content-type'),
    retryAfter: r.headers.get('retry-after'),
    body: (await r.json()) as Record<string, unknown>,
  };
}

test.each([
  ['pg-refused', 'database'],
  ['pg-terminated', 'database'],
  ['pg-lock-timeout', 'database'],
  ['pool-exhausted', 'database'],
  ['nats-timeout', 'nats'],
  ['nats-wrapped', 'nats'],
])('%s → 503 problem+json with Retry-After naming the %s', async (name, dependency) => {
  const r = await call(name);
  expect(r).toMatchObject({ status: 503, type: 'application/problem+json', retryAfter: '7' });
  expect(r.body).toMatchObject({ status: 503, dependency });
});

test('a thrown HttpProblem answers as itself', async () => {
  const r = await call('problem');
  expect(r).toMatchObject({ status: 409, type: 'application/problem+json', retryAfter: null });
  expect(r.body).toMatchObject({ status: 409, detail: 'already there', orderId: 'o-1' });
});

test.each(['bug', 'constraint'])('%s (our own bug) stays a 500 without internals in the answer', async (name) => {
  const r = await call(name);
  expect(r).toMatchObject({ status: 500, type: 'application/problem+json', retryAfter: null });
  expect(r.body.detail).toBe('internal error');
});
