/**
 * Helpers for tests that run against the real NATS and Postgres of this machine. Every test file
 * gets its own namespace (subjects + stream names) and its own Postgres schema, and removes them.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh lowercase namespace such as `t_k3j9x2ab`. */
export function testNamespace(prefix = 't'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** Deletes every stream whose name starts with the namespace's prefix. */
export async function deleteNamespaceStreams(nc: NatsConnection, namespace: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const prefix = `${namespace.toUpperCase()}_`;
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(prefix)) await jsm.streams.delete(name).catch(() => undefined);
  }
}

export async function testNats(): Promise<NatsConnection> {
  return connect({ servers: TEST_NATS_URL, name: 'test' });
}

/** Drops a Postgres schema created for a test run. */
export async function dropSchema(schema: string, url = TEST_DATABASE_URL): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
