import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as v from 'valibot';
import { problem } from './problem.js';

export const MAX_BODY_BYTES = 64 * 1024;
const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/**
 * 413 problem for bodies over the limit. A declared Content-Length is checked from the header
 * alone: Node's HTTP parser never reads a body past it, so the body cannot be longer. A chunked
 * body is counted while it streams (hono's bodyLimit). Only the headers are read on the common
 * path because touching `c.req.raw.body`, which hono's bodyLimit does first, makes
 * @hono/node-server build a whole web Request and stream for the body: ~13 % of POST /orders'
 * CPU under load, against a direct read of the incoming message in `c.req.text()`.
 */
export function jsonBodyLimit(maxSize = MAX_BODY_BYTES): MiddlewareHandler {
  const tooLarge = (c: Context) => problem(c, 413, `request body exceeds ${maxSize} bytes`);
  const streamed = bodyLimit({ maxSize, onError: tooLarge });
  return (c, next) => {
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return streamed(c, next);
    return Number.parseInt(declared, 10) > maxSize ? Promise.resolve(tooLarge(c)) : next();
  };
}

export type BodyResult<T> = { ok: true; value: T } | { ok: false; response: Response };

/**
 * Reads a JSON request body against a valibot schema: 415 for another content type, 400 for bad
 * JSON, 400 with `errors: [{path, message}]` for schema violations. `what` names the thing in
 * the detail ("the order", "the stock update").
 */
export async function readJsonBody<S extends v.GenericSchema>(c: Context, schema: S, what: string): Promise<BodyResult<v.InferOutput<S>>> {
  const type = c.req.header('content-type') ?? '';
  if (!JSON_TYPE.test(type)) {
    return { ok: false, response: problem(c, 415, `content type must be application/json, got "${type || 'none'}"`) };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text());
  } catch (err) {
    return { ok: false, response: problem(c, 400, `body is not valid JSON: ${(err as Error).message}`, { title: 'Invalid JSON' }) };
  }
  const parsed = v.safeParse(schema, raw);
  if (!parsed.success) {
    return {
      ok: false,
      response: problem(c, 400, `${what} does not match the schema`, {
        title: 'Validation failed',
        errors: parsed.issues.slice(0, 20).map((i) => ({ path: v.getDotPath(i) ?? '', message: i.message })),
      }),
    };
  }
  return { ok: true, value: parsed.output };
}
