import { EVENT_SCHEMAS, type EventType } from '../events/schemas.js';
import type { Handler, Handlers } from './contract.js';

export interface DeclaredHandler {
  version: string;
  handle: Handler;
}

/** Handlers by event type with the version each declared (a bare function: v1); an unknown version is a wiring bug. */
export function declaredHandlers(durable: string, handlers: Handlers): Map<string, DeclaredHandler> {
  const out = new Map<string, DeclaredHandler>();
  for (const [type, h] of Object.entries(handlers) as Array<[EventType, Handler | DeclaredHandler | undefined]>) {
    if (!h) continue;
    const entry = typeof h === 'function' ? { version: 'v1', handle: h } : h;
    if (!Object.hasOwn(EVENT_SCHEMAS[type], entry.version))
      throw new Error(`${durable}: handler for ${type} declares unknown version ${entry.version}`);
    out.set(type, entry);
  }
  return out;
}
