/**
 * Who the client is, by one rule for every use (rate limits, audit logs): the TCP peer, unless
 * that peer is a proxy we were told to trust (TRUSTED_PROXIES, a CIDR list; nobody by default).
 * Only then is X-Forwarded-For read, from the right — each trusted proxy appends the address it
 * saw — and the first address not itself a trusted proxy is the client. Anything to the left of
 * it was written by the client and is not believed.
 */
import { BlockList, isIP } from 'node:net';
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { readSetting } from '../config.js';

type Env = Record<string, string | undefined>;

/** A set of proxy addresses and networks whose X-Forwarded-For is believed. */
export class TrustedProxies {
  readonly #list = new BlockList();

  private constructor(readonly entries: readonly string[]) {
    for (const e of entries) {
      const [address, bits] = e.split('/') as [string, string | undefined];
      const family = isIP(address);
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (!family || !/^\d*$/.test(bits ?? '') || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
        throw new Error(`trusted proxies: "${e}" is neither an IP address nor a CIDR network (e.g. 10.0.0.0/8, ::1)`);
      }
      this.#list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Trusts nobody: the TCP peer is the client. */
  static none(): TrustedProxies {
    return new TrustedProxies([]);
  }

  /** A comma (or space) separated list of addresses and CIDR networks; throws on a bad entry. */
  static parse(list: string | undefined): TrustedProxies {
    return new TrustedProxies((list ?? '').split(/[\s,]+/).filter(Boolean));
  }

  trusts(address: string): boolean {
    const a = normalise(address);
    const family = isIP(a);
    return family !== 0 && this.#list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** TRUSTED_PROXIES (a CIDR list); unset trusts nobody. */
export function trustedProxiesFromEnv(env: Env = process.env): TrustedProxies {
  try {
    return TrustedProxies.parse(readSetting('TRUSTED_PROXIES', env));
  } catch (err) {
    throw new Error(`TRUSTED_PROXIES: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * An address as written by a socket or a proxy, made comparable: IPv4-mapped IPv6 (::ffff:a.b.c.d)
 * as IPv4, and a port or brackets some proxies add ("a.b.c.d:port", "[v6]:port") dropped.
 */
function normalise(raw: string): string {
  let a = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracketed) a = bracketed[1]!;
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(a);
  return mapped ? mapped[1]! : a;
}

/**
 * The client's address from the TCP peer and the X-Forwarded-For header (pure: see the module
 * comment for the rule). Undefined only when the peer is unknown.
 */
export function resolveClientAddress(
  peer: string | undefined,
  forwardedFor: string | undefined,
  trusted: TrustedProxies,
): string | undefined {
  if (!peer) return undefined;
  let client = normalise(peer);
  if (!forwardedFor || !trusted.trusts(client)) return client;
  const hops = forwardedFor.split(',').map(normalise);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    // A trusted proxy writes addresses; anything else here is not one to believe.
    if (!isIP(hop)) return client;
    client = hop;
    if (!trusted.trusts(hop)) return hop;
  }
  return client;
}

/** The TCP peer of a request served by @hono/node-server; undefined elsewhere (app.request in tests). */
export function peerAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined;
  }
}

/** The client's address for this request (see the module comment). */
export function clientAddress(c: Context, trusted: TrustedProxies = TrustedProxies.none()): string | undefined {
  return resolveClientAddress(peerAddress(c), c.req.header('x-forwarded-for'), trusted);
}
