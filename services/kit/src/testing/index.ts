/**
 * Helpers for tests that run against the real NATS and Postgres of this machine. Every test file
 * gets its own namespace (subjects + stream names) and its own Postgres schema, and removes them.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startService, type RunningService } from '../service.js';
import type { ServiceDefinition } from '../definition.js';
import type { Db } from '../db/db.js';
import { openPglite } from '../db/pglite.js';
import { openPostgres } from '../db/postgres.js';

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

/**
 * What a test file made in its namespace, removed: the namespace's streams (through `nc`, which is
 * then closed; skipped when the file never connected) and the given Postgres schemas.
 */
export async function removeTestNamespace(nc: NatsConnection | undefined, namespace: string, schemas: string[] = []): Promise<void> {
  if (nc) {
    try {
      await deleteNamespaceStreams(nc, namespace);
    } finally {
      await nc.close();
    }
  }
  for (const s of schemas) await dropSchema(s);
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

export type Backend = 'postgres' | 'pglite';

/**
 * The two backends a test of the Db contract runs on (`test.each(backends)`): Postgres in a schema
 * of its own (`<prefix>_<hex>`) and in-memory PGlite. Every Db opened is closed by close(), which
 * then drops the schema: call it from afterAll.
 */
export function dbBackends(
  prefix: string,
  o: { poolMax?: number } = {},
): { backends: Array<[Backend, () => Promise<Db>]>; close(): Promise<void> } {
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  const opened: Db[] = [];
  const track = async (open: Promise<Db>) => {
    const db = await open;
    opened.push(db);
    return db;
  };
  return {
    backends: [
      ['postgres', () => track(openPostgres({ url: TEST_DATABASE_URL, schema, ...(o.poolMax ? { poolMax: o.poolMax } : {}) }))],
      ['pglite', () => track(openPglite({ schema: prefix }))],
    ],
    async close() {
      for (const db of opened.splice(0)) await db.close();
      await dropSchema(schema);
    },
  };
}

/**
 * Env for a service under test on the given backend: its own Postgres schema, or its own PGlite
 * data directory. `cleanup` drops what it made.
 */
export async function testDbEnv(backend: Backend, label: string): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  if (backend === 'postgres') {
    const schema = `${label.replace(/[^a-z0-9_]/g, '_')}_${randomBytes(4).toString('hex')}`;
    return { env: { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema }, cleanup: () => dropSchema(schema) };
  }
  const dir = await mkdtemp(join(tmpdir(), `orderflow-${label}-`));
  return { env: { DATA_DIR: dir }, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Reads every message currently in a stream (ephemeral ordered consumer). */
export async function readStream(
  nc: NatsConnection,
  stream: string,
): Promise<Array<{ subject: string; seq: number; headers: Record<string, string>; json: unknown }>> {
  const { jetstream } = await import('@nats-io/jetstream');
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const out: Array<{ subject: string; seq: number; headers: Record<string, string>; json: unknown }> = [];
  if (info.state.messages === 0) return out;
  const c = await js.consumers.get(stream);
  const iter = await c.fetch({ max_messages: info.state.messages, expires: 2000 });
  for await (const m of iter) {
    const headers: Record<string, string> = {};
    if (m.headers) for (const [k, vs] of m.headers) headers[k] = vs[0] ?? '';
    let json: unknown;
    try {
      json = m.json();
    } catch {
      json = m.string();
    }
    out.push({ subject: m.subject, seq: m.seq, headers, json });
    if (m.seq >= info.state.last_seq) break;
  }
  return out;
}

export { freePort, portOpen, TestNatsServer, type NatsServerOptions } from './nats-server.js';
export { TestPostgresServer, type StopMode } from './postgres-server.js';
export { launchProcess, httpReady, processAlive, type LaunchOptions, type LaunchedProcess } from './child-process.js';
export { parseMetrics, scrapeMetrics, type MetricsPage } from './metrics-page.js';
export { startTestBed, type TestBed, type TestBedOptions } from './test-bed.js';
export { CLIENT_CERT_EXT, makeTestCa, makeTestCert, makeTestTlsSet, natsMutualTlsArgs, SERVER_CERT_EXT } from './certificates.js';

export interface TestService {
  svc: RunningService;
  /** A separate connection for the test's own reads of the streams. */
  nc: NatsConnection;
  namespace: string;
  /** Stops the service, deletes the namespace's streams and drops its schema or data dir. */
  stop(): Promise<void>;
}

/**
 * One service in-process for a test, ready (`/ready` 200), on its own namespace and its own
 * Postgres schema (or PGlite data dir). Extra env overrides the defaults.
 */
export async function startTestService(
  def: ServiceDefinition,
  o: { label: string; backend?: Backend; env?: Record<string, string> },
): Promise<TestService> {
  const namespace = o.env?.ORDERFLOW_NAMESPACE ?? testNamespace();
  const db = await testDbEnv(o.backend ?? 'postgres', o.label);
  const svc = await startService(def, {
    env: { PORT: '0', LOG_LEVEL: 'silent', NATS_URL: TEST_NATS_URL, ORDERFLOW_NAMESPACE: namespace, ...db.env, ...(o.env ?? {}) },
  });
  const nc = await testNats();
  await waitFor(`${def.name} ready`, async () => (await fetch(`${svc.url}/ready`)).ok);
  return {
    svc,
    nc,
    namespace,
    async stop() {
      await svc.stop();
      await removeTestNamespace(nc, namespace);
      await db.cleanup();
    },
  };
}
