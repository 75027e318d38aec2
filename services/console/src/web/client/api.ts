/// <reference lib="dom" />
/** The console's JSON API as the page calls it, with the token kept in this tab's session storage. */

const TOKEN_KEY = 'orderflow-console-token';

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (t: string): void => sessionStorage.setItem(TOKEN_KEY, t),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

/** The API wants a (valid) token: the page asks for one. */
export class Unauthorized extends Error {}

/** GET (or `init`) /api<path>; a problem+json answer throws with its detail. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const t = token.get();
  if (t) headers.set('authorization', `Bearer ${t}`);
  if (init.body) headers.set('content-type', 'application/json');
  const r = await fetch(`/api${path}`, { ...init, headers });
  if (r.status === 401) throw new Unauthorized('token required');
  const body = (await r.json().catch(() => ({}))) as Record<string, unknown>;
  if (!r.ok) throw new Error(typeof body.detail === 'string' ? body.detail : `HTTP ${r.status}`);
  return body as T;
}
