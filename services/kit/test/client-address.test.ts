/**
 * One rule for who the client is (rate limits, audit logs): the TCP peer, unless it is a trusted
 * proxy (TRUSTED_PROXIES); only then is X-Forwarded-For read, from the right. Shown on the rule
 * itself and on the rate limiter behind a real HTTP server reached over loopback.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { clientAddress, resolveClientAddress, TrustedProxies, trustedProxiesFromEnv } from '../src/http/client-address.js';
import { rateLimit, rateLimitFromEnv } from '../src/http/rate-limit.js';

describe('resolveClientAddress', () => {
  const none = TrustedProxies.none();
  const lb = TrustedProxies.parse('10.0.0.0/8, 127.0.0.1');

  test('an untrusted peer is the client, whatever X-Forwarded-For says', () => {
    expect(resolveClientAddress('203.0.113.9', '1.2.3.4', none)).toBe('203.0.113.9');
    expect(resolveClientAddress('203.0.113.9', '1.2.3.4', lb)).toBe('203.0.113.9');
  });

  test('behind a trusted proxy the address it appended is the client', () => {
    expect(resolveClientAddress('10.1.2.3', '198.51.100.7', lb)).toBe('198.51.100.7');
    // Two trusted hops (an ingress behind a load balancer): skip both.
    expect(resolveClientAddress('10.1.2.3', '198.51.100.7, 10.9.9.9', lb)).toBe('198.51.100.7');
  });

  test('what the client wrote to the left of the first untrusted hop is not believed', () => {
    expect(resolveClientAddress('10.1.2.3', '6.6.6.6, 198.51.100.7', lb)).toBe('198.51.100.7');
    expect(resolveClientAddress('10.1.2.3', 'not-an-ip, 10.9.9.9', lb)).toBe('10.9.9.9');
  });

  test('every hop trusted: the leftmost is the client; no header: the peer', () => {
    expect(resolveClientAddress('10.1.2.3', '10.0.0.7, 10.9.9.9', lb)).toBe('10.0.0.7');
    expect(resolveClientAddress('10.1.2.3', undefined, lb)).toBe('10.1.2.3');
    expect(resolveClientAddress(undefined, '1.2.3.4', lb)).toBeUndefined();
  });

  test('IPv4-mapped IPv6, ports and brackets compare as the plain address', () => {
    expect(resolveClientAddress('::ffff:127.0.0.1', '198.51.100.7:51234', lb)).toBe('198.51.100.7');
    expect(resolveClientAddress('::ffff:203.0.113.9', '1.2.3.4', lb)).toBe('203.0.113.9');
    const v6 = TrustedProxies.parse('fd00::/8 ::1');
    expect(resolveClientAddress('::1', '[2001:db8::5]:443', v6)).toBe('2001:db8::5');
    expect(v6.trusts('fd12::1')).toBe(true);
    expect(v6.trusts('fe80::1')).toBe(false);
  });

  test('TRUSTED_PROXIES: unset trusts nobody; a bad entry is refused at start, naming it', () => {
    expect(trustedProxiesFromEnv({}).trusts('127.0.0.1')).toBe(false);
    expect(trustedProxiesFromEnv({ TRUSTED_PROXIES: '127.0.0.0/8' }).trusts('127.0.0.1')).toBe(true);
    expect(() => trustedProxiesFromEnv({ TRUSTED_PROXIES: '10.0.0.0/33' })).toThrow(/TRUSTED_PROXIES.*10\.0\.0\.0\/33/);
    expect(() => trustedProxiesFromEnv({ TRUSTED_PROXIES: 'proxy.internal' })).toThrow(/proxy\.internal/);
  });
});

describe('over HTTP (a real server on loopback)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** Serves `app`; the test's requests come from 127.0.0.1. */
  async function listen(app: Hono): Promise<string> {
    server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** One request a client per hour: a second from the same client is refused. */
  function limited(env: Record<string, string>): Hono {
    const app = new Hono();
    app.use('*', rateLimit({ ...rateLimitFromEnv({ RATE_LIMIT_RPS: '1', RATE_LIMIT_BURST: '1', ...env }), perIpRps: 1 / 3600 }));
    app.get('/', (c) => c.json({ client: clientAddress(c, trustedProxiesFromEnv(env)) }));
    return app;
  }
  const get = (url: string, xff?: string) => fetch(url, { headers: xff ? { 'x-forwarded-for': xff } : {} });

  test('rate limit: a spoofed X-Forwarded-For from an untrusted peer does not buy a fresh bucket', async () => {
    const url = await listen(limited({}));
    const first = await get(url, '198.51.100.1');
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ client: '127.0.0.1' });
    const spoofed = await get(url, '198.51.100.2');
    expect(spoofed.status).toBe(429);
    expect(spoofed.headers.get('retry-after')).toBeTruthy();
  });

  test('rate limit: behind a trusted proxy, each forwarded client has its own bucket', async () => {
    const url = await listen(limited({ TRUSTED_PROXIES: '127.0.0.1/32' }));
    const a = await get(url, '198.51.100.1');
    expect(a.status).toBe(200);
    expect(await a.json()).toEqual({ client: '198.51.100.1' });
    expect((await get(url, '198.51.100.2')).status).toBe(200);
    // The same client again, even with a made-up address in front of what the proxy appended.
    expect((await get(url, '6.6.6.6, 198.51.100.1')).status).toBe(429);
  });
});
