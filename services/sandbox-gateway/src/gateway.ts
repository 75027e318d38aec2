import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { createLogger, problem, readSetting, serveHttp, type Logger } from '@orderflow/kit';

/**
 * A sandbox payment gateway for dev and tests. Everything lives in memory: a restart forgets
 * every charge, which is what a sandbox is for. It behaves like a real card API where it matters
 * to the saga: an Idempotency-Key makes a repeated request return the first result (never a
 * second capture), declines are deterministic (amount over a limit, card token `tok_decline`),
 * and latency and failures can be injected, at start-up by env or at run time by POST /admin/config.
 */

export interface GatewayConfig {
  /** Charges with an amount above this are declined. */
  declineOver: number;
  /** Probability (0..1) that a request answers 503 before doing anything. */
  failureRate: number;
  /** Delay before every /charges and /refunds answer (the work is done after it, so a client that gave up may still have been charged). */
  latencyMs: number;
  /**
   * A charge is captured this long after it arrived, holding its Idempotency-Key meanwhile;
   * lookups and refunds are not delayed. This is the gateway that captures after the client gave
   * up. Lowering it (POST /admin/config) releases the charges already waiting.
   */
  captureDelayMs: number;
  /**
   * A request whose Idempotency-Key is held by a request still running: `wait` for it and answer
   * its result, or `conflict` (409, as real card gateways answer while the first request runs).
   */
  keyInUse: 'wait' | 'conflict';
  /**
   * The gateway's request deadline: a charge not captured within this long after it arrived is
   * never captured (dropped, answered 504, nothing stored). Clients rely on it to settle a charge
   * whose answer they never got: a lookup made after send time + this bound that finds nothing
   * means nothing will ever be captured. Injected latency and capture delay count toward it.
   */
  maxProcessingMs: number;
}

export interface Charge {
  chargeId: string;
  orderId: string;
  amount: number;
  currency: string;
  status: 'captured' | 'refunded';
  createdAt: string;
  refundedAt?: string;
}

export interface GatewayStats {
  /** Every /charges, /refunds and charge lookup request, failed ones included. */
  requests: number;
  /** POST /charges requests that reached the gateway (what a client's breaker should keep down). */
  chargeRequests: number;
  refundRequests: number;
  lookups: number;
  captures: number;
  refunds: number;
  declines: number;
  failures: number;
  /** 409 answers because the key was in use by a request still running (keyInUse: conflict). */
  keyInUse: number;
  /** Charges dropped because their processing deadline (maxProcessingMs) passed before the capture. */
  dropped: number;
}

interface Stored {
  status: 201 | 200 | 402 | 404;
  body: Record<string, unknown>;
  /** The request the key was first used with: the same key with another request is a 409. */
  fingerprint: string;
}

export interface GatewayOptions {
  env?: Record<string, string | undefined>;
  log?: Logger;
  /** Random source for failure injection (tests may pin it). */
  random?: () => number;
}

function numberSetting(name: string, fallback: number, env: Record<string, string | undefined>, min: number, max: number): number {
  const raw = readSetting(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name}="${raw}" must be a number in ${min}..${max}`);
  return n;
}

export function gatewayConfigFromEnv(env: Record<string, string | undefined>): GatewayConfig {
  return {
    declineOver: numberSetting('SANDBOX_DECLINE_OVER', 10_000, env, 0, Number.MAX_SAFE_INTEGER),
    failureRate: numberSetting('SANDBOX_FAILURE_RATE', 0, env, 0, 1),
    latencyMs: numberSetting('SANDBOX_LATENCY_MS', 0, env, 0, 600_000),
    captureDelayMs: numberSetting('SANDBOX_CAPTURE_DELAY_MS', 0, env, 0, 3_600_000),
    keyInUse: keyInUseSetting(readSetting('SANDBOX_KEY_IN_USE', env) ?? 'wait'),
    maxProcessingMs: numberSetting('SANDBOX_MAX_PROCESSING_MS', 60_000, env, 1, 86_400_000),
  };
}

function keyInUseSetting(raw: string): GatewayConfig['keyInUse'] {
  if (raw === 'wait' || raw === 'conflict') return raw;
  throw new Error(`SANDBOX_KEY_IN_USE="${raw}" must be wait or conflict`);
}

export interface GatewayApp {
  app: Hono;
  config: GatewayConfig;
  stats: GatewayStats;
  charges: Map<string, Charge>;
  /** Lets charges waiting for their capture time go now (the server is stopping). */
  releaseWaiting(): void;
}

const sleep = (ms: number) => (ms > 0 ? new Promise<void>((r) => setTimeout(r, ms)) : Promise.resolve());

export function createGatewayApp(opts: GatewayOptions = {}): GatewayApp {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger('sandbox-gateway', readSetting('LOG_LEVEL', env) ?? 'info');
  const random = opts.random ?? Math.random;
  const config = gatewayConfigFromEnv(env);
  const stats: GatewayStats = {
    requests: 0,
    chargeRequests: 0,
    refundRequests: 0,
    lookups: 0,
    captures: 0,
    refunds: 0,
    declines: 0,
    failures: 0,
    keyInUse: 0,
    dropped: 0,
  };
  const charges = new Map<string, Charge>();
  const results = new Map<string, Stored>();
  // Requests with one key are handled one after another, so two racing retries see one result.
  const keyLocks = new Map<string, Promise<unknown>>();

  // Charges waiting for their capture time; each re-reads captureDelayMs (and the deadline) when woken.
  const waiting = new Set<() => void>();
  let released = false;
  const wakeWaiting = () => {
    for (const wake of [...waiting]) wake();
  };
  const untilCaptureTime = (arrivedAt: number) =>
    new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const check = () => {
        clearTimeout(timer);
        // No point waiting past the deadline: the charge is dropped then.
        const left = arrivedAt + Math.min(config.captureDelayMs, config.maxProcessingMs) - Date.now();
        if (left <= 0 || released) {
          waiting.delete(check);
          resolve();
        } else {
          timer = setTimeout(check, left);
        }
      };
      waiting.add(check);
      check();
    });

  const serialised = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const prev = keyLocks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    keyLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (keyLocks.get(key) === tail) keyLocks.delete(key);
    }
  };

  /** The common shape of both mutating endpoints: key, replay, latency, injected failure, then the work. */
  /** Latency then, maybe, an injected failure: true when the request must answer 503. */
  const chaos = async () => {
    await sleep(config.latencyMs);
    if (config.failureRate > 0 && random() < config.failureRate) {
      stats.failures++;
      return true;
    }
    return false;
  };

  const idempotent = async (
    c: Context,
    scope: 'charge' | 'refund',
    body: Record<string, unknown>,
    work: () => Omit<Stored, 'fingerprint'>,
  ) => {
    stats.requests++;
    if (scope === 'charge') stats.chargeRequests++;
    else stats.refundRequests++;
    const key = c.req.header('idempotency-key');
    if (!key || key.length > 255) return problem(c, 400, 'Idempotency-Key header (1..255 chars) is required');
    const fingerprint = JSON.stringify(body);
    const arrivedAt = Date.now();
    if (config.keyInUse === 'conflict' && keyLocks.has(`${scope}:${key}`)) {
      stats.keyInUse++;
      return problem(c, 409, 'Idempotency-Key is in use by a request that is still being processed; retry later');
    }
    return serialised(`${scope}:${key}`, async () => {
      const seen = results.get(`${scope}:${key}`);
      if (seen) {
        if (seen.fingerprint !== fingerprint) return problem(c, 409, 'Idempotency-Key was already used with a different request');
        return c.json({ ...seen.body, replayed: true }, seen.status);
      }
      // Nothing is stored on a failure: a retry with the same key may succeed.
      if (await chaos()) return problem(c, 503, 'sandbox failure injected');
      if (scope === 'charge') {
        await untilCaptureTime(arrivedAt);
        const lateMs = Date.now() - arrivedAt;
        if (lateMs >= config.maxProcessingMs) {
          // Past the request deadline: never captured, and nothing stored, so a retry (a new request) may capture.
          stats.dropped++;
          log.warn({ orderId: body.orderId, key, lateMs, maxProcessingMs: config.maxProcessingMs }, 'sandbox.charge_dropped');
          return problem(c, 504, 'charge not processed within the gateway processing deadline; it will never be captured');
        }
      }
      const out = work();
      results.set(`${scope}:${key}`, { ...out, fingerprint });
      return c.json(out.body, out.status);
    });
  };

  const readJson = async (c: Context): Promise<Record<string, unknown> | undefined> => {
    try {
      const b: unknown = await c.req.json();
      return b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };

  const app = new Hono();
  app.get('/health', (c) => c.json({ status: 'ok' }));
  // No dependencies: ready as long as it answers.
  app.get('/ready', (c) => c.json({ status: 'ready', config }));

  app.post('/charges', async (c) => {
    const b = await readJson(c);
    if (!b) return problem(c, 400, 'body must be a JSON object');
    const errors: Array<{ path: string; message: string }> = [];
    if (typeof b.orderId !== 'string' || !b.orderId) errors.push({ path: 'orderId', message: 'required string' });
    if (typeof b.amount !== 'number' || !Number.isFinite(b.amount) || b.amount < 0) errors.push({ path: 'amount', message: 'number ≥ 0' });
    if (typeof b.currency !== 'string' || !/^[A-Z]{3}$/.test(b.currency)) errors.push({ path: 'currency', message: 'ISO currency code' });
    if (b.cardToken !== undefined && typeof b.cardToken !== 'string') errors.push({ path: 'cardToken', message: 'string' });
    if (errors.length) return problem(c, 400, 'invalid charge request', { errors });
    const req = {
      orderId: b.orderId as string,
      amount: b.amount as number,
      currency: b.currency as string,
      cardToken: b.cardToken as string | undefined,
    };
    return idempotent(c, 'charge', req, () => {
      const reason = req.cardToken === 'tok_decline' ? 'card_declined' : req.amount > config.declineOver ? 'amount_over_limit' : undefined;
      if (reason) {
        stats.declines++;
        log.info({ orderId: req.orderId, amount: req.amount, reason }, 'sandbox.declined');
        return { status: 402, body: { status: 'declined', reason } };
      }
      const charge: Charge = {
        chargeId: `ch_${randomUUID()}`,
        orderId: req.orderId,
        amount: req.amount,
        currency: req.currency,
        status: 'captured',
        createdAt: new Date().toISOString(),
      };
      charges.set(charge.chargeId, charge);
      stats.captures++;
      log.info({ orderId: req.orderId, chargeId: charge.chargeId, amount: req.amount }, 'sandbox.captured');
      return { status: 201, body: { chargeId: charge.chargeId, status: 'captured', amount: req.amount } };
    });
  });

  app.post('/refunds', async (c) => {
    const b = await readJson(c);
    if (!b || typeof b.chargeId !== 'string' || !b.chargeId)
      return problem(c, 400, 'body must be { chargeId }', { errors: [{ path: 'chargeId', message: 'required string' }] });
    const chargeId = b.chargeId;
    return idempotent(c, 'refund', { chargeId }, () => {
      const charge = charges.get(chargeId);
      if (!charge) return { status: 404, body: { status: 'not_found', chargeId } };
      // A charge is refunded at most once, whatever the key: a second refund answers the first.
      if (charge.status === 'refunded') return { status: 200, body: { chargeId, status: 'refunded', amount: charge.amount } };
      charge.status = 'refunded';
      charge.refundedAt = new Date().toISOString();
      stats.refunds++;
      log.info({ orderId: charge.orderId, chargeId }, 'sandbox.refunded');
      return { status: 201, body: { chargeId, status: 'refunded', amount: charge.amount } };
    });
  });

  // A gateway that is down is down for lookups too.
  app.get('/charges', async (c) => {
    stats.requests++;
    stats.lookups++;
    if (await chaos()) return problem(c, 503, 'sandbox failure injected');
    const orderId = c.req.query('orderId');
    const list = [...charges.values()].filter((ch) => !orderId || ch.orderId === orderId);
    return c.json({ charges: list });
  });

  app.get('/charges/:chargeId', (c) => {
    const ch = charges.get(c.req.param('chargeId'));
    return ch ? c.json(ch) : problem(c, 404, 'unknown charge');
  });

  app.get('/stats', (c) => c.json(stats));

  app.get('/admin/config', (c) => c.json(config));
  app.post('/admin/config', async (c) => {
    const b = await readJson(c);
    if (!b) return problem(c, 400, 'body must be a JSON object');
    const next = { ...config };
    const errors: Array<{ path: string; message: string }> = [];
    const take = (k: 'failureRate' | 'latencyMs' | 'declineOver' | 'captureDelayMs' | 'maxProcessingMs', min: number, max: number) => {
      const v = b[k];
      if (v === undefined) return;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) errors.push({ path: k, message: `number in ${min}..${max}` });
      else next[k] = v;
    };
    take('failureRate', 0, 1);
    take('latencyMs', 0, 600_000);
    take('declineOver', 0, Number.MAX_SAFE_INTEGER);
    take('captureDelayMs', 0, 3_600_000);
    take('maxProcessingMs', 1, 86_400_000);
    if (b.keyInUse !== undefined) {
      if (b.keyInUse === 'wait' || b.keyInUse === 'conflict') next.keyInUse = b.keyInUse;
      else errors.push({ path: 'keyInUse', message: 'wait or conflict' });
    }
    if (errors.length) return problem(c, 400, 'invalid config', { errors });
    Object.assign(config, next);
    wakeWaiting();
    log.info({ config }, 'sandbox.config_changed');
    return c.json(config);
  });

  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    log.error({ err }, 'sandbox.unhandled_error');
    return problem(c, 500, 'internal error');
  });
  const releaseWaiting = () => {
    released = true;
    wakeWaiting();
  };
  return { app, config, stats, charges, releaseWaiting };
}

export interface StartGatewayOptions {
  /** 0 picks a free port. Default: PORT from env, else 3004. */
  port?: number;
  env?: Record<string, string | undefined>;
  hostname?: string;
  log?: Logger;
}

export interface RunningGateway extends GatewayApp {
  url: string;
  port: number;
  /** Stops accepting, ends idle connections, waits for in-flight requests. Idempotent. */
  stop(): Promise<void>;
}

export async function startGateway(opts: StartGatewayOptions = {}): Promise<RunningGateway> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger('sandbox-gateway', readSetting('LOG_LEVEL', env) ?? 'info');
  const gw = createGatewayApp({ env, log });
  const wanted = opts.port ?? Number(readSetting('PORT', env) ?? 3004);
  const http = await serveHttp(gw.app, { port: wanted, hostname: opts.hostname });
  const port = http.port;
  log.info({ port, config: gw.config }, 'sandbox.started');
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const closed = http.close();
      // close() waits for requests in flight: a charge waiting for its capture time must not hold it.
      gw.releaseWaiting();
      await closed;
      log.info('sandbox.stopped');
    })());
  return { ...gw, url: http.url, port, stop };
}
