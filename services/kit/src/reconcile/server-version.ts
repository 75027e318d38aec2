/**
 * The connected nats-server's version, read from the connection's INFO (what the server said
 * when the connection was made, refreshed on every reconnect). Fields newer than the server are
 * refused with the version they need, instead of being sent to a server that would silently drop
 * them (2.9 ignores JSON keys it does not know, so a reconcile would "update" them forever).
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';

export type Version = readonly [number, number, number];

/** "2.10.0" (also "v2.11.0-RC.1") → [2, 10, 0]; undefined when it is not a version. */
export function parseVersion(text: string | undefined): Version | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function atLeast(v: Version, min: Version): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
}

export const showVersion = (v: Version): string => v.join('.');

/**
 * The version the manager's connection reports. The manager type does not expose its connection,
 * but the implementation keeps it (`getConnection()`); undefined when neither is there.
 */
export function connectedServerVersion(jsm: JetStreamManager): string | undefined {
  const withConn = jsm as unknown as { getConnection?: () => NatsConnection; nc?: NatsConnection };
  const nc = typeof withConn.getConnection === 'function' ? withConn.getConnection() : withConn.nc;
  return nc?.info?.version;
}

/** Whether the connected server is `min` or newer; false while its version is unknown. */
export function connectedAtLeast(jsm: JetStreamManager, min: Version): boolean {
  const v = parseVersion(connectedServerVersion(jsm));
  return v !== undefined && atLeast(v, min);
}
