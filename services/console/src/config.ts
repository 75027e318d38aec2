import { intSetting, natsAccessFromEnv, readSetting, trustedProxiesFromEnv, type NatsAccess, type TrustedProxies } from '@orderflow/kit';

type Env = Record<string, string | undefined>;

export interface ConsoleConfig {
  port: number;
  logLevel: string;
  namespace: string;
  /** NATS_URL, credentials and TLS, read as every service reads them. */
  nats: NatsAccess;
  services: { order: string; inventory: string; payment: string };
  /** Bearer token every /api/* request must carry; undefined = open (keep the console internal). */
  token?: string;
  /** Base URL of the Jaeger UI as the operator's browser reaches it; trace links are off without it. */
  jaegerUiUrl?: string;
  shutdownTimeoutMs: number;
  /** Retry-After (seconds) of a 503 while NATS, a stream or a service is away (HTTP_RETRY_AFTER_SECONDS). */
  retryAfterSeconds: number;
  /** Proxies whose X-Forwarded-For names the client in audit lines (TRUSTED_PROXIES; nobody by default). */
  trustedProxies: TrustedProxies;
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

/** The console's settings: only public endpoints (NATS, the services' HTTP), never a database. */
export function consoleConfig(env: Env = process.env): ConsoleConfig {
  const jaeger = readSetting('JAEGER_UI_URL', env);
  return {
    port: intSetting('PORT', 3005, env),
    logLevel: readSetting('LOG_LEVEL', env) ?? 'info',
    namespace: readSetting('ORDERFLOW_NAMESPACE', env) ?? '',
    nats: natsAccessFromEnv(env),
    services: {
      order: trimSlash(readSetting('ORDER_SERVICE_URL', env) ?? 'http://127.0.0.1:3001'),
      inventory: trimSlash(readSetting('INVENTORY_SERVICE_URL', env) ?? 'http://127.0.0.1:3002'),
      payment: trimSlash(readSetting('PAYMENT_SERVICE_URL', env) ?? 'http://127.0.0.1:3003'),
    },
    token: readSetting('CONSOLE_TOKEN', env),
    jaegerUiUrl: jaeger ? trimSlash(jaeger) : undefined,
    shutdownTimeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 10_000, env),
    retryAfterSeconds: intSetting('HTTP_RETRY_AFTER_SECONDS', 5, env),
    trustedProxies: trustedProxiesFromEnv(env),
  };
}
