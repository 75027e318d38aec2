/**
 * /api/dlq: list, show, replay (one or all) and discard dead letters through the kit's replay
 * module; every action is audited with who asked (see actor.ts).
 */
import { Hono, type Context } from 'hono';
import { HttpProblem } from '@orderflow/kit';
import { DeadLetters } from '../dlq.js';
import type { DlqResponse } from '../web/api-types.js';
import { actorOf } from './actor.js';
import { liveConnection, onPlatformStreams } from './platform.js';
import type { RouteDeps } from './routes.js';

function seqParam(c: Context): number {
  const n = Number(c.req.param('seq'));
  if (!Number.isSafeInteger(n) || n <= 0) throw new HttpProblem(400, 'sequence must be a positive integer');
  return n;
}

/** The body's JSON object, or {} (these bodies are optional). */
async function optionalBody(c: Context): Promise<Record<string, unknown>> {
  const body = (await c.req.json().catch(() => undefined)) as unknown;
  return body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
}

export function deadLetterRoutes({ config, log, nats, names, topology }: RouteDeps): Hono {
  const dlqStream = names.stream('DLQ');
  const app = new Hono();
  const actor = (c: Context) => actorOf(c, config);
  /** Runs `fn` on the DLQ with the live connection (a 503 while NATS or the stream is away). */
  const withDlq = <T>(fn: (d: DeadLetters) => Promise<T>) =>
    onPlatformStreams(() => {
      const conn = liveConnection(nats);
      return fn(new DeadLetters(conn.jsm, conn.js, topology, dlqStream, log));
    });
  const missing = (seq: number) => new HttpProblem(404, `no dead letter ${seq} in ${dlqStream}`);

  app.get('/dlq', async (c) => {
    const body: DlqResponse = { stream: dlqStream, ...(await withDlq((d) => d.groups())) };
    return c.json(body);
  });

  app.get('/dlq/:seq', async (c) => {
    const seq = seqParam(c);
    const e = await withDlq((d) => d.show(seq));
    if (!e) throw missing(seq);
    return c.json(e);
  });

  app.post('/dlq/replay-all', async (c) => {
    const { subject } = await optionalBody(c);
    const only = typeof subject === 'string' && subject ? subject : undefined;
    const results = await withDlq((d) => d.replayAll(actor(c), only));
    return c.json({ results, replayed: results.filter((r) => r.ok).length, failed: results.filter((r) => !r.ok).length });
  });

  app.post('/dlq/:seq/replay', async (c) => {
    const seq = seqParam(c);
    const r = await withDlq((d) => d.replay(seq, actor(c)));
    if (r.ok) return c.json(r);
    // Found but not sent back (its original stream refused it): the upstream failed, say how.
    if (r.entry) throw new HttpProblem(502, r.error ?? 'replay failed', { result: r });
    throw new HttpProblem(404, r.error ?? `no dead letter ${seq}`);
  });

  app.post('/dlq/:seq/discard', async (c) => {
    const seq = seqParam(c);
    // The page asks for confirmation; the API insists on it too, so a stray POST discards nothing.
    const { confirm } = await optionalBody(c);
    if (confirm !== true) throw new HttpProblem(400, 'discarding is final: send {"confirm": true}');
    if (!(await withDlq((d) => d.discard(seq, actor(c))))) throw missing(seq);
    return c.json({ seq, discarded: true });
  });

  return app;
}
