/**
 * OpenTelemetry tracing for a service process. Import it first in `src/main.ts`
 * (`import '@orderflow/kit/otel';`): it starts the Node SDK as a side effect when an OTLP endpoint
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an exporter
 * (`OTEL_TRACES_EXPORTER`) is set, and does nothing otherwise. The exporter is the SDK's own choice
 * from the standard variables: `OTEL_TRACES_EXPORTER` (otlp, console, zipkin, none) and
 * `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` (http/protobuf by default, http/json, grpc); likewise
 * `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_RESOURCE_ATTRIBUTES`...
 *
 * This module deliberately loads nothing of the kit but a tiny shutdown-hook list: it must run
 * before `pg` and `node:http` are touched by anyone else.
 */
import { createRequire } from 'node:module';
import { basename, dirname } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { onShutdown } from './shutdown-hooks.js';

/** Paths polled by probes and Prometheus: a span per scrape would drown the traces that matter. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

let sdk: NodeSDK | undefined;

/**
 * Whether this process traces. Off unless asked for (an endpoint or an exporter is named), so a
 * service run without any OTEL_* setting pays nothing and prints nothing; `OTEL_SDK_DISABLED=true`
 * and `OTEL_TRACES_EXPORTER=none` switch it off even then, as the specification says.
 */
export function telemetryEnabled(env: Record<string, string | undefined> = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  // As the SDK reads the list: "none" first means no traces at all.
  if (exporters[0] === 'none') return false;
  return exporters.length > 0 || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * The service name when OTEL_SERVICE_NAME is unset: the package directory of the entry script
 * (`services/<name>/dist/main.js` → `<name>`, `operator/dist/main.js` → `operator`).
 */
export function defaultServiceName(entry = process.argv[1] ?? ''): string {
  const dir = dirname(entry);
  const pkgDir = basename(dir) === 'dist' || basename(dir) === 'src' ? dirname(dir) : dir;
  return basename(pkgDir) || 'orderflow';
}

/** Writes SDK diagnostics (export failures...) as JSON lines like the rest of the logs. */
function diagLogger(service: string): DiagLogger {
  const write =
    (level: string) =>
    (message: string, ...args: unknown[]) =>
      process.stderr.write(
        `${JSON.stringify({ level, time: new Date().toISOString(), service, msg: `otel: ${message}`, args: args.map(String) })}\n`,
      );
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('trace') };
}

/**
 * Starts tracing once per process; a no-op without an OTLP endpoint. Returns whether it runs.
 * Safe to call again (the first call wins).
 */
export function startTelemetry(serviceName?: string, env: Record<string, string | undefined> = process.env): boolean {
  if (sdk) return true;
  if (!telemetryEnabled(env)) return false;
  const name = env.OTEL_SERVICE_NAME || serviceName || defaultServiceName();
  diag.setLogger(diagLogger(name), DiagLogLevel.WARN);
  // Metrics are Prometheus (/metrics) and logs are pino on stdout: the SDK only exports traces
  // unless someone opts in through the standard variables.
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  // No traceExporter here: the SDK builds the one OTEL_TRACES_EXPORTER and
  // OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL ask for (gRPC, HTTP/JSON or HTTP/protobuf OTLP, console...).
  sdk = new NodeSDK({
    serviceName: name,
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED_PATHS.has((req.url ?? '').split('?')[0] ?? ''),
        // Outgoing node:http calls are the SDK's own exports and the Kubernetes client: not saga work.
        ignoreOutgoingRequestHook: () => true,
      }),
      // Only queries inside a request or handler: the relay's idle polling would otherwise be a
      // stream of one-span traces.
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
      // Node's fetch() and the npm undici both publish on the undici:request:* diagnostics channels:
      // the payment gateway calls, retries included, become client spans.
      new UndiciInstrumentation(),
    ],
  });
  sdk.start();
  // Under ESM the instrumentations' require hooks never see `import pg from 'pg'` or
  // `import http from 'node:http'`. Requiring them once here lets the hooks patch the shared
  // module objects (pg's Client.prototype, http.Server.prototype.emit) that the ESM imports
  // later receive from the same CommonJS cache, so no --import loader hook is needed.
  const require = createRequire(import.meta.url);
  for (const mod of ['node:http', 'node:https', 'pg']) {
    try {
      require(mod);
    } catch {
      // pg is optional (PGlite-only deployments).
    }
  }
  onShutdown(shutdownTelemetry);
  return true;
}

/** Flushes and stops the SDK (spans still buffered are exported). Idempotent. */
export async function shutdownTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown().catch((err: unknown) => diag.warn(`shutdown failed: ${String(err)}`));
}

startTelemetry();
