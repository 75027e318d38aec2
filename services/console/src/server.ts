import { readFile } from 'node:fs/promises';
import { createLogger, createMetrics, exitOnSignals, Names, NatsManager, serveHttp, type Logger } from '@orderflow/kit';
import { consoleConfig, type ConsoleConfig } from './config.js';
import { createConsoleApp, type ConsoleState } from './app.js';
import { JetStreamSampler } from './sources/jetstream.js';
import { platformTopology } from './topology.js';
import { ServicesClient, type FetchFn, type SagaFigures } from './sources/services.js';

export interface StartConsoleOptions {
  env?: Record<string, string | undefined>;
  log?: Logger;
  hostname?: string;
  /** JetStream sampling period (the page polls every 2 s). */
  sampleMs?: number;
  /** order-service /metrics scrape period. */
  scrapeMs?: number;
  fetch?: FetchFn;
}

export interface RunningConsole {
  config: ConsoleConfig;
  port: number;
  url: string;
  nats: NatsManager;
  stop(): Promise<void>;
}

// src/*.ts and dist/*.js sit at the same depth: the compiled client is in dist/web/client either way.
const CLIENT_DIR = new URL('../dist/web/client/', import.meta.url);

/** One compiled browser module; the path is checked by the route (no `..`, only *.js). */
async function loadClientAsset(path: string): Promise<string | undefined> {
  try {
    return await readFile(new URL(path, CLIENT_DIR), 'utf8');
  } catch {
    return undefined;
  }
}

/** Starts the console: NATS (read-only use), samplers, HTTP. Used by main and by tests. */
export async function startConsole(opts: StartConsoleOptions = {}): Promise<RunningConsole> {
  const env = opts.env ?? process.env;
  const config = consoleConfig(env);
  const log = opts.log ?? createLogger('console', config.logLevel);
  const metrics = createMetrics('console');
  const names = new Names(config.namespace);
  const topology = platformTopology(config.namespace);
  const nats = new NatsManager({ ...config.nats, name: 'console' }, log, metrics);
  const services = new ServicesClient(config.services, opts.fetch ?? fetch);
  const jetstream = new JetStreamSampler(topology, log);

  let saga: { figures?: SagaFigures; error?: string } = {};
  const state: ConsoleState = { jetstream, saga: () => saga };

  let stopped = false;
  const loop = (everyMs: number, fn: () => Promise<void>) => {
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      await fn().catch((err: unknown) => log.debug({ err }, 'console.sample_failed'));
      if (!stopped) timer = setTimeout(() => void tick(), everyMs);
    };
    void tick();
    return () => clearTimeout(timer);
  };
  const stopSampling = loop(opts.sampleMs ?? 2000, async () => {
    const conn = nats.connection();
    if (!conn || !nats.isConnected()) return jetstream.fail(new Error('not connected to NATS'));
    await jetstream.sample(conn.jsm);
  });
  const stopScraping = loop(opts.scrapeMs ?? 5000, async () => {
    try {
      saga = { figures: await services.scrapeSaga() };
    } catch (err) {
      saga = { ...saga, error: (err as Error).message };
    }
  });

  let accepting = true;
  const app = createConsoleApp({
    config,
    log,
    nats,
    names,
    topology,
    services,
    state,
    registry: metrics.registry,
    clientAsset: loadClientAsset,
    accepting: () => accepting,
  });
  // Listening before NATS connects: /health and /ready (what is missing) answer from the start.
  const http = await serveHttp(app, { port: config.port, hostname: opts.hostname });
  const port = http.port;
  nats.start();
  // A snapshot as soon as NATS is up (or back on a rebuilt connection), not one sampling period later.
  nats.onConnection(({ jsm }) => void jetstream.sample(jsm).catch(() => undefined));
  log.info({ port, namespace: config.namespace, services: config.services, auth: config.token ? 'bearer' : 'none' }, 'console.started');

  let stopping: Promise<void> | undefined;
  return {
    config,
    port,
    url: http.url,
    nats,
    stop: () =>
      (stopping ??= (async () => {
        accepting = false;
        stopped = true;
        stopSampling();
        stopScraping();
        // The event streams are long-lived: cut every connection, not only the idle ones.
        await http.close({ connections: 'all' });
        await nats.stop();
        log.info('console.stopped');
      })()),
  };
}

/** Process entry: start, stop cleanly on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS. */
export async function runConsole(): Promise<void> {
  const log = createLogger('console');
  let c: RunningConsole;
  try {
    c = await startConsole({ log });
  } catch (err) {
    log.fatal({ err }, 'console.start_failed');
    process.exit(1);
  }
  exitOnSignals(() => c.stop(), { log, timeoutMs: c.config.shutdownTimeoutMs });
}
