import { readFileSync } from 'node:fs';
import { natsAccessFromEnv, type NatsAccess } from './nats/settings.js';

type Env = Record<string, string | undefined>;

/**
 * Reads a setting from the environment, or from the file named by `<NAME>_FILE` (the way
 * Kubernetes mounts secrets). Secrets never come from code.
 */
export function readSetting(name: string, env: Env = process.env): string | undefined {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return direct;
  const file = env[`${name}_FILE`];
  if (file) return readFileSync(file, 'utf8').trim();
  return undefined;
}

export function intSetting(name: string, fallback: number, env: Env = process.env): number {
  const raw = readSetting(name, env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name}="${raw}" is not a number`);
  return n;
}

export function boolSetting(name: string, fallback: boolean, env: Env = process.env): boolean {
  const raw = readSetting(name, env);
  if (raw === undefined) return fallback;
  return /^(1|true|yes|on)$/i.test(raw);
}

export interface BaseConfig {
  service: string;
  port: number;
  /** Where NATS is and how to log in (nats/settings.ts: the one reader, shared with console, operator, CLI). */
  nats: NatsAccess;
  /**
   * NATS_REBUILD_TIMEOUT_MS: how long a connection that nats.js closed for good (credentials
   * rejected during a reconnect) may take to be rebuilt before the process exits non-zero so
   * Kubernetes restarts it. 0 = keep trying forever.
   */
  natsRebuildTimeoutMs: number;
  databaseUrl?: string;
  databaseSchema: string;
  /** Limits set on every Postgres connection (see DbSettings). */
  db: DbSettings;
  dataDir: string;
  namespace: string;
  ensureStreams: boolean;
  /** Replicas of the streams a service creates with ENSURE_STREAMS (3 on a 3-node cluster). */
  streamReplicas: number;
  shutdownTimeoutMs: number;
  /** Wait after readiness goes 503 before closing the listener (endpoints being removed). */
  shutdownDrainDelayMs: number;
  logLevel: string;
  /** HTTP_RETRY_AFTER_SECONDS: the Retry-After of a 503 answered because a dependency is away. */
  retryAfterSeconds: number;
}

/** Per-connection limits for Postgres, so no statement, lock wait or forgotten transaction holds on forever. */
export interface DbSettings {
  /** DB_STATEMENT_TIMEOUT_MS: statement_timeout (0 = none). */
  statementTimeoutMs: number;
  /** DB_LOCK_TIMEOUT_MS: lock_timeout, the longest wait for a row or table lock (0 = none). */
  lockTimeoutMs: number;
  /** DB_IDLE_TX_TIMEOUT_MS: idle_in_transaction_session_timeout (0 = none). */
  idleInTransactionTimeoutMs: number;
  /** DB_KEEPALIVE_MS: TCP keepalive initial delay, so a vanished server or a cut network is noticed. */
  keepAliveInitialDelayMs: number;
  /** DB_CONNECT_TIMEOUT_MS: a new connection (or a free one from a full pool) must come within this. */
  connectTimeoutMs: number;
  /** DB_POOL_MAX: connections per process. */
  poolMax: number;
  /**
   * PGOPTIONS: server settings for every connection (`-c name=value ...`), as libpq reads it. The
   * pool's own `options` (the schema's search_path) would otherwise silently replace it.
   */
  serverOptions: string;
}

export function dbSettings(env: Env = process.env): DbSettings {
  return {
    statementTimeoutMs: intSetting('DB_STATEMENT_TIMEOUT_MS', 30_000, env),
    lockTimeoutMs: intSetting('DB_LOCK_TIMEOUT_MS', 10_000, env),
    idleInTransactionTimeoutMs: intSetting('DB_IDLE_TX_TIMEOUT_MS', 60_000, env),
    keepAliveInitialDelayMs: intSetting('DB_KEEPALIVE_MS', 10_000, env),
    connectTimeoutMs: intSetting('DB_CONNECT_TIMEOUT_MS', 5_000, env),
    poolMax: intSetting('DB_POOL_MAX', 10, env),
    serverOptions: readSetting('PGOPTIONS', env) ?? '',
  };
}

export function baseConfig(service: string, defaultPort: number, env: Env = process.env): BaseConfig {
  return {
    service,
    port: intSetting('PORT', defaultPort, env),
    nats: natsAccessFromEnv(env),
    natsRebuildTimeoutMs: intSetting('NATS_REBUILD_TIMEOUT_MS', 120_000, env),
    databaseUrl: readSetting('DATABASE_URL', env),
    databaseSchema: readSetting('DATABASE_SCHEMA', env) ?? service.replace(/-/g, '_'),
    db: dbSettings(env),
    dataDir: readSetting('DATA_DIR', env) ?? `.data/${service}`,
    namespace: readSetting('ORDERFLOW_NAMESPACE', env) ?? '',
    ensureStreams: boolSetting('ENSURE_STREAMS', true, env),
    streamReplicas: intSetting('STREAM_REPLICAS', 1, env),
    shutdownTimeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 25_000, env),
    shutdownDrainDelayMs: intSetting('SHUTDOWN_DRAIN_DELAY_MS', 0, env),
    logLevel: readSetting('LOG_LEVEL', env) ?? 'info',
    retryAfterSeconds: intSetting('HTTP_RETRY_AFTER_SECONDS', 5, env),
  };
}
