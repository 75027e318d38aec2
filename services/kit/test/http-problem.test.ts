/**
 * HttpProblem, the one problem type handlers throw: the shared error handler answers with it as
 * problem+json, its headers included; a Hono app without that handler still answers the same.
 */
import { expect, test } from 'vitest';
import { Hono } from 'hono';
import { createLogger, errorHandler, HttpProblem } from '@orderflow/kit';

const thrown = () => new HttpProblem(503, 'order-service did not answer', { dependency: 'order-service' }, { 'Retry-After': '5' });

test.each([
  ['with the kit error handler', true],
  ["with Hono's own (getResponse)", false],
])('a thrown HttpProblem %s: its status, problem+json body and headers', async (_, withHandler) => {
  const app = new Hono();
  app.get('/', () => {
    throw thrown();
  });
  if (withHandler) app.onError(errorHandler({ log: createLogger('test', 'silent'), retryAfterSeconds: 1 }));
  const r = await app.request('/');
  expect(r.status).toBe(503);
  expect(r.headers.get('content-type')).toBe('application/problem+json');
  expect(r.headers.get('retry-after')).toBe('5');
  expect(await r.json()).toEqual({
    type: 'https://orderflow.dev/problems/503',
    title: 'Service Unavailable',
    status: 503,
    detail: 'order-service did not answer',
    dependency: 'order-service',
  });
});
