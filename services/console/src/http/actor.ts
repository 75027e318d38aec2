/** Who did it, for the audit line of every dead-letter action. */
import type { Context } from 'hono';
import { clientAddress, type TrustedProxies } from '@orderflow/kit';
import type { Actor } from '../dlq.js';

/** The client's address by the kit's one rule (X-Forwarded-For only from a trusted proxy). */
export function actorOf(c: Context, o: { token?: string; trustedProxies: TrustedProxies }): Actor {
  return { auth: o.token ? 'token' : 'anonymous', ip: clientAddress(c, o.trustedProxies), userAgent: c.req.header('user-agent') };
}
