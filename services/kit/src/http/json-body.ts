import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import * as v from 'valibot';
import { problem } from './problem.js';

export const MAX_BODY_BYTES = 64 * 1024;
const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/** 413 problem for bodies over the limit, checked while streaming (a lying Content-Length too). */
export function jsonBodyLimit(maxSize = MAX_BODY_BYTES): MiddlewareHandler {
  return bodyLimit({ maxSize, onError: (c) => problem(c, 413, `request body exceeds ${maxSize} bytes`) });
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
