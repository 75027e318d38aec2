import pg from 'pg';
import type { FirstStatement } from './db.js';

/**
 * A parameterised statement as plain SQL text, for the simple query protocol (which takes no
 * parameters but several statements, so BEGIN and the statement go in one round trip).
 *
 * Each value becomes a quoted literal, which the server types from its context exactly as it
 * types a bound parameter (pg sends those untyped as text too): `$2::text[]` and `'{…}'::text[]`
 * mean the same. Escaping is pg's own escapeLiteral; array elements are quoted as pg quotes them.
 * The text must not contain `$n` inside a string or dollar quote (the kit's own statements don't).
 */
export function inlineParams({ text, params }: FirstStatement): string {
  return text.replace(/\$(\d+)/g, (ref, n: string) => {
    const v = params[Number(n) - 1];
    if (v === undefined) throw new Error(`statement refers to ${ref} but has ${params.length} parameter(s): ${text}`);
    return literal(v);
  });
}

function literal(v: string | number | readonly string[]): string {
  if (typeof v === 'string') return pg.escapeLiteral(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot inline ${v} as a SQL literal`);
    return `'${v}'`;
  }
  return pg.escapeLiteral(`{${v.map((e) => `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`);
}
