import { readFileSync } from 'node:fs';

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
  natsServers: string[];
  natsUser?: string;
  natsPassword?: string;
  natsCredsFile?: string;
  natsTls?: { caFile?: string; certFile?: string; keyFile?: string };
  databaseUrl?: string;
  databaseSchema: string;
  dataDir: string;
  namespace: string;
  ensureStreams: boolean;
  /** Replicas of the streams a service creates with ENSURE_STREAMS (3 on a 3-node cluster). */
  streamReplicas: number;
  shutdownTimeoutMs: number;
  /** Wait after readiness goes 503 before closing the listener (endpoints being removed). */
  shutdownDrainDelayMs: number;
  logLevel: string;
}

export function baseConfig(service: string, defaultPort: number, env: Env = process.env): BaseConfig {
  const tlsCa = readSetting('NATS_TLS_CA', env);
  const tlsCert = readSetting('NATS_TLS_CERT', env);
  const tlsKey = readSetting('NATS_TLS_KEY', env);
  return {
    service,
    port: intSetting('PORT', defaultPort, env),
    natsServers: (readSetting('NATS_URL', env) ?? 'nats://127.0.0.1:4222').split(',').map((s) => s.trim()).filter(Boolean),
    natsUser: readSetting('NATS_USER', env),
    natsPassword: readSetting('NATS_PASSWORD', env),
    natsCredsFile: env.NATS_CREDS || undefined,
    natsTls: tlsCa || tlsCert ? { caFile: tlsCa, certFile: tlsCert, keyFile: tlsKey } : undefined,
    databaseUrl: readSetting('DATABASE_URL', env),
    databaseSchema: readSetting('DATABASE_SCHEMA', env) ?? service.replace(/-/g, '_'),
    dataDir: readSetting('DATA_DIR', env) ?? `.data/${service}`,
    namespace: readSetting('ORDERFLOW_NAMESPACE', env) ?? '',
    ensureStreams: boolSetting('ENSURE_STREAMS', true, env),
    streamReplicas: intSetting('STREAM_REPLICAS', 1, env),
    shutdownTimeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 25_000, env),
    shutdownDrainDelayMs: intSetting('SHUTDOWN_DRAIN_DELAY_MS', 0, env),
    logLevel: readSetting('LOG_LEVEL', env) ?? 'info',
  };
}
