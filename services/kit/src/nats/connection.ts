import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';

export interface NatsSettings {
  servers: string[];
  name: string;
  user?: string;
  password?: string;
  credsFile?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Give up (and call onFatal) if the first connect has not succeeded by then. 0 = never. */
  firstConnectDeadlineMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

export interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

type Listener = (c: Connected) => void | Promise<void>;

/** Full-jitter exponential backoff: uniform in [0, min(max, initial·2^attempt)]. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(initialMs / 2, Math.round(random() * cap));
}

/**
 * Owns the NATS connection: keeps trying the first connect with jittered exponential backoff
 * (the service starts and serves /health while NATS is away), then lets the client reconnect
 * forever with the same backoff. Logs each state change; drains on stop.
 */
export class NatsManager {
  #conn: Connected | undefined;
  #connected = false;
  #stopped = false;
  #listeners: Listener[] = [];
  #attempt = 0;
  #ready: Promise<Connected>;
  #resolveReady!: (c: Connected) => void;
  #rejectReady!: (e: Error) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: NatsSettings,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    private readonly onFatal: (err: Error) => void = () => undefined,
  ) {
    this.#ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A rejection nobody awaits must not crash the process; onFatal is the caller's signal.
    this.#ready.catch(() => undefined);
  }

  /** Starts connecting in the background; resolves at once. */
  start(): void {
    if (this.#timer || this.#conn || this.#stopped) return;
    const deadline = this.settings.firstConnectDeadlineMs ?? 0;
    const startedAt = Date.now();
    const attempt = async (): Promise<void> => {
      if (this.#stopped) return;
      try {
        const nc = await connect(this.#options());
        if (this.#stopped) {
          await nc.close();
          return;
        }
        const jsm = await jetstreamManager(nc, { checkAPI: false });
        this.#onFirstConnect({ nc, js: jetstream(nc), jsm });
      } catch (err) {
        if (deadline > 0 && Date.now() - startedAt > deadline) {
          const e = new Error(`NATS not reachable at ${this.settings.servers.join(',')} within ${deadline}ms: ${(err as Error).message}`);
          this.log.error({ err: e }, 'nats.first_connect_gave_up');
          this.#rejectReady(e);
          this.onFatal(e);
          return;
        }
        const delay = this.#nextDelay();
        this.log.warn({ servers: this.settings.servers, attempt: this.#attempt, retryInMs: delay, err: (err as Error).message }, 'nats.connect_failed');
        this.#timer = setTimeout(() => void attempt(), delay);
      }
    };
    this.#timer = setTimeout(() => void attempt(), 0);
  }

  /** Resolves once the first connection is up. */
  ready(): Promise<Connected> {
    return this.#ready;
  }

  isConnected(): boolean {
    return this.#connected && !this.#stopped;
  }

  get current(): Connected | undefined {
    return this.#conn;
  }

  /** Called on the first connect (or at once if already connected). */
  onConnected(fn: Listener): void {
    this.#listeners.push(fn);
    if (this.#conn) void this.#invoke(fn, this.#conn);
  }

  /** Drains the connection (subscriptions finish, pending publishes flush). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const conn = this.#conn;
    if (!conn) {
      this.#rejectReady(new Error('NATS manager stopped before connecting'));
      return;
    }
    try {
      if (!conn.nc.isClosed()) await conn.nc.drain();
    } catch (err) {
      this.log.warn({ err }, 'nats.drain_failed');
      await conn.nc.close().catch(() => undefined);
    }
    this.#connected = false;
    this.metrics?.natsConnected.set(0);
  }

  #nextDelay(): number {
    const b = this.settings.backoff ?? { initialMs: 250, maxMs: 10_000 };
    return backoffDelay(this.#attempt++, b.initialMs, b.maxMs);
  }

  #options(): ConnectionOptions {
    const s = this.settings;
    const opts: ConnectionOptions = {
      servers: s.servers,
      name: s.name,
      reconnect: true,
      maxReconnectAttempts: -1,
      // Reconnect delays follow the same jittered exponential curve as the first connect.
      reconnectDelayHandler: () => this.#nextDelay(),
      pingInterval: 10_000,
      maxPingOut: 3,
      timeout: 5_000,
    };
    if (s.user) {
      opts.user = s.user;
      opts.pass = s.password;
    }
    if (s.credsFile) opts.authenticator = credsAuthenticator(readFileSync(s.credsFile));
    if (s.tls) {
      opts.tls = {
        ...(s.tls.caFile ? { caFile: s.tls.caFile } : {}),
        ...(s.tls.certFile ? { certFile: s.tls.certFile } : {}),
        ...(s.tls.keyFile ? { keyFile: s.tls.keyFile } : {}),
      };
    }
    return opts;
  }

  #onFirstConnect(conn: Connected): void {
    const { nc } = conn;
    this.#conn = conn;
    this.#attempt = 0;
    this.#connected = true;
    this.metrics?.natsConnected.set(1);
    this.log.info({ server: nc.getServer() }, 'nats.connected');
    void this.#watch(nc);
    void nc.closed().then((err) => {
      this.#connected = false;
      this.metrics?.natsConnected.set(0);
      if (!this.#stopped) this.log.error({ err }, 'nats.closed_unexpectedly');
    });
    this.#resolveReady(conn);
    for (const fn of this.#listeners) void this.#invoke(fn, conn);
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.#connected = false;
          this.metrics?.natsConnected.set(0);
          this.log.warn({ server: s.server }, 'nats.disconnected');
          break;
        case 'reconnecting':
          this.log.debug('nats.reconnecting');
          break;
        case 'reconnect':
          this.#attempt = 0;
          this.#connected = true;
          this.metrics?.natsConnected.set(1);
          this.log.info({ server: s.server }, 'nats.reconnected');
          break;
        case 'error':
          this.log.error({ err: s.error }, 'nats.error');
          break;
        case 'ldm':
          this.log.warn({ server: s.server }, 'nats.lame_duck');
          break;
        case 'staleConnection':
          this.log.warn('nats.stale_connection');
          break;
        default:
          break;
      }
    }
  }

  async #invoke(fn: Listener, c: Connected): Promise<void> {
    try {
      await fn(c);
    } catch (err) {
      this.log.error({ err }, 'nats.on_connected_listener_failed');
    }
  }
}
