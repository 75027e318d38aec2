import type { MsgHdrs } from '@nats-io/nats-core';

/** What reading a message's headers needs: `get` as nats.js answers it (first value, exact name, else ""). */
export type HeaderLookup = Pick<MsgHdrs, 'get'>;

/**
 * A message's headers read once into a map. nats.js's MsgHdrs.get copies and filters the whole
 * key list on every call, and the consumer reads about nine headers a message.
 */
export function headerView(h: MsgHdrs | undefined): HeaderLookup | undefined {
  if (!h) return undefined;
  const first = new Map<string, string>();
  for (const [k, v] of h) if (v.length) first.set(k, v[0]!);
  return { get: (k: string) => first.get(k) ?? '' };
}
