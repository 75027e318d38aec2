/**
 * jsonBodyLimit + readJsonBody behind the real node server (@hono/node-server, as every service
 * runs): a body over the limit is 413 problem+json whether it declares its length or arrives
 * chunked, and a body within it is read whole either way.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Hono } from 'hono';
import * as v from 'valibot';
import { jsonBodyLimit, readJsonBody, serveHttp, type HttpServing } from '@orderflow/kit';

const LIMIT = 1024;
const Body = v.object({ pad: v.string() });
let server: HttpServing;

beforeAll(async () => {
  const app = new Hono();
  app.post('/echo', jsonBodyLimit(LIMIT), async (c) => {
    const body = await readJsonBody(c, Body, 'the body');
    if (!body.ok) return body.response;
    return c.json({ length: body.value.pad.length });
  });
  server = await serveHttp(app, { port: 0, hostname: '127.0.0.1' });
});
afterAll(async () => {
  await server?.close({ connections: 'all' });
});

/** POSTs `chunks` as they are: with Content-Length when `declared`, else chunked (no length). */
function post(chunks: string[], declared: boolean): Promise<{ status: number; type: string | undefined; body: unknown }> {
  const total = chunks.reduce((n, c) => n + Buffer.byteLength(c), 0);
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}/echo`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(declared ? { 'content-length': String(total) } : {}) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: JSON.parse(Buffer.concat(parts).toString()) }),
        );
        res.on('error', reject);
      },
    );
    // A refused body may be cut off by the server while we still write it.
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

const json = (padLength: number) => JSON.stringify({ pad: 'x'.repeat(padLength) });
/** The same JSON text in pieces of 100 bytes, so a chunked body arrives in many chunks. */
const pieces = (s: string) => s.match(/[\s\S]{1,100}/g)!;

test.each([
  ['declared (Content-Length)', true],
  ['chunked (no Content-Length)', false],
])('a body within the limit, %s, is read whole', async (_, declared) => {
  const r = await post(pieces(json(LIMIT - 20)), declared);
  expect(r.status).toBe(200);
  expect(r.body).toEqual({ length: LIMIT - 20 });
});

test.each([
  ['declared (Content-Length)', true],
  ['chunked (no Content-Length)', false],
])('a body over the limit, %s, is 413 problem+json', async (_, declared) => {
  const r = await post(pieces(json(LIMIT + 10)), declared);
  expect(r.status).toBe(413);
  expect(r.type).toBe('application/problem+json');
  expect(r.body).toMatchObject({ status: 413, detail: `request body exceeds ${LIMIT} bytes` });
});
