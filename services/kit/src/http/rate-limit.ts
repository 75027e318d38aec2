import type { Context, MiddlewareHandler } from 'hono';
import { intSetting } from '../config.js';
import { clientAddress, trustedProxiesFromEnv, type TrustedProxies } from './client-address.js';
import { problem } from './problem.js';

export interface RateLimitOptions {
  /** Sustained requests per second per client IP; 0 turns the per-IP limit off. */
  perIpRps: number;
  /** Bucket size per IP (requests allowed in a burst); defaults to 2 × perIpRps. */
  perIpBurst?: number;
  /** Sustained requests per second over all clients; 0 turns the global limit off. */
  globalRps: number;
  globalBurst?: number;
  /** Buckets kept at most; idle full ones are dropped first so a scan of many IPs can't grow memory. */
  maxClients?: number;
  /** Proxies whose X-Forwarded-For names the client (see client-address.ts); nobody by default. */
  trustedProxies?: TrustedProxies;
  now?: () => number;
}

/**
 * Reads RATE_LIMIT_RPS / RATE_LIMIT_BURST (per client IP) and RATE_LIMIT_GLOBAL_RPS /
 * RATE_LIMIT_GLOBAL_BURST. Everything is off (0) unless set, so benchmarks and the saga tests are
 * unaffected; production sets them in the chart.
 */
export function rateLimitFromEnv(env: Record<string, string | undefined>): RateLimitOptions {
  const perIpRps = intSetting('RATE_LIMIT_RPS', 0, env);
  const globalRps = intSetting('RATE_LIMIT_GLOBAL_RPS', 0, env);
  return {
    perIpRps,
    perIpBurst: intSetting('RATE_LIMIT_BURST', Math.max(1, perIpRps * 2), env),
    globalRps,
    globalBurst: intSetting('RATE_LIMIT_GLOBAL_BURST', Math.max(1, globalRps * 2), env),
    trustedProxies: trustedProxiesFromEnv(env),
  };
}

class Bucket {
  tokens: number;
  at: number;
  constructor(
    readonly rate: number,
    readonly size: number,
    now: number,
  ) {
    this.tokens = size;
    this.at = now;
  }
  /** Takes one token; returns 0 on success, else the seconds until one is available. */
  take(now: number): number {
    this.tokens = Math.min(this.size, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return (1 - this.tokens) / this.rate;
  }
  full(now: number): boolean {
    return this.tokens + ((now - this.at) / 1000) * this.rate >= this.size;
  }
}

/**
 * Token-bucket rate limiting per client IP and globally. A refused request gets 429
 * problem+json with Retry-After (whole seconds, at least 1). The global bucket is only charged
 * for requests the per-IP bucket let through, so one noisy client cannot drain it for free.
 */
export function rateLimit(o: RateLimitOptions): MiddlewareHandler {
  const now = o.now ?? Date.now;
  const maxClients = o.maxClients ?? 10_000;
  const perIp = new Map<string, Bucket>();
  const global = o.globalRps > 0 ? new Bucket(o.globalRps, Math.max(1, o.globalBurst ?? o.globalRps * 2), now()) : undefined;
  const refuse = (c: Context, waitS: number, scope: string) => {
    c.header('Retry-After', String(Math.max(1, Math.ceil(waitS))));
    return problem(c, 429, `rate limit exceeded (${scope}); retry later`);
  };
  // Both limits off (the default): nothing to count on any request.
  if (o.perIpRps <= 0 && !global) return (_c, next) => next();
  return async (c, next) => {
    const t = now();
    if (o.perIpRps > 0) {
      const ip = clientAddress(c, o.trustedProxies) ?? 'unknown';
      let b = perIp.get(ip);
      if (!b) {
        if (perIp.size >= maxClients) {
          for (const [k, v] of perIp) if (v.full(t)) perIp.delete(k);
          // Still full of active clients: forget the oldest (insertion order) rather than grow.
          if (perIp.size >= maxClients) perIp.delete(perIp.keys().next().value!);
        }
        b = new Bucket(o.perIpRps, Math.max(1, o.perIpBurst ?? o.perIpRps * 2), t);
        perIp.set(ip, b);
      }
      const wait = b.take(t);
      if (wait > 0) return refuse(c, wait, 'per client');
    }
    if (global) {
      const wait = global.take(t);
      if (wait > 0) return refuse(c, wait, 'global');
    }
    await next();
  };
}
