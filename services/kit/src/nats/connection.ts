import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { RetryDelays, sleep } from '../faults/backoff.js';
import { natsConnectionOptions, type NatsAccess } from './settings.js';

export interface NatsSettings extends NatsAccess {
  name: string;
  /**
   * Give up (and call onFatal) if a connection that nats.js closed for good (it stops
   * reconnecting after the server rejected the credentials twice) is not rebuilt by then.
   * 0 = keep rebuilding forever.
   */
  rebuildTimeoutMs?: number;
  backoff?: { initialMs: number; maxMs: number };
}

export interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

type Listener = (c: Connected) => void | Promise<void>;

/**
 * Owns the NATS connection: keeps trying the first connect with exponential backoff (the
 * service starts and serves /health while NATS is away), then lets the client reconnect forever
 * with the same backoff. When nats.js closes the connection for good (credentials rejected during
 * a reconnect: expired, revoked, rotated) it builds a new one, reading the password or creds file
 * again, until `rebuildTimeoutMs` passes; then onFatal (the service exits non-zero, so the pod
 * restarts) — meanwhile `closedReason()` says why, for /health. Logs each state change; drains on stop.
 *
 * Users of the connection: `connection()` / `ready()` always give the live connection (ready()
 * waits while one is being built); `onConnection` listeners run for every new connection, so
 * subscriptions made on the old one can be made again; `onConnected` runs on the first only.
 */
export class NatsManager {
  #conn: Connected | undefined;
  #connected = false;
  #stopped = false;
  #closedReason: string | undefined;
  #lastError: string | undefined;
  #firstListeners: Listener[] = [];
  #connectionListeners: Listener[] = [];
  #ready!: Promise<Connected>;
  #resolveReady!: (c: Connected) => void;
  #rejectReady!: (e: Error) => void;
  #building: Promise<void> | undefined;
  readonly #abort = new AbortController();
  readonly #reconnectDelays: RetryDelays;
  #reconnectDelay: number;

  constructor(
    private readonly settings: NatsSettings,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    private readonly onFatal: (err: Error) => void = () => undefined,
  ) {
    this.#reconnectDelays = new RetryDelays(this.#backoff());
    this.#reconnectDelay = this.#reconnectDelays.next();
    this.#newReady();
  }

  /** Starts connecting in the background; resolves at once. */
  start(): void {
    if (this.#building || this.#conn || this.#stopped) return;
    this.#building = this.#build('first');
  }

  /** The live connection; waits while the first one or a replacement is being built. */
  ready(): Promise<Connected> {
    const conn = this.connection();
    return conn ? Promise.resolve(conn) : this.#ready;
  }

  /** The live connection, or undefined while there is none (not yet, or closed for good). */
  connection(): Connected | undefined {
    const conn = this.#conn;
    return conn && !conn.nc.isClosed() ? conn : undefined;
  }

  isConnected(): boolean {
    return this.#connected && !this.#stopped && this.connection() !== undefined;
  }

  /** Why the process has no connection it can wait for (closed for good, being rebuilt), else undefined. */
  closedReason(): string | undefined {
    return this.#stopped ? undefined : this.#closedReason;
  }

  /** Why the latest connect attempt failed (cleared once connected), for status messages. */
  lastConnectError(): string | undefined {
    return this.#conn && !this.#conn.nc.isClosed() ? undefined : this.#lastError;
  }

  /** The latest connection (possibly closed); prefer connection(). */
  get current(): Connected | undefined {
    return this.#conn;
  }

  /** Called on the first connect (or at once if already connected). */
  onConnected(fn: Listener): void {
    this.#firstListeners.push(fn);
    if (this.#conn) void this.#invoke(fn, this.#conn);
  }

  /** Called for every new connection: the first and each rebuilt one (at once if connected now). */
  onConnection(fn: Listener): void {
    this.#connectionListeners.push(fn);
    const conn = this.connection();
    if (conn) void this.#invoke(fn, conn);
  }

  /** Drains the connection (subscriptions finish, pending publishes flush). Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    await this.#building;
    const conn = this.#conn;
    if (!conn || conn.nc.isClosed()) {
      this.#rejectReady(new Error('NATS manager stopped before connecting'));
      this.#connected = false;
      this.metrics?.natsConnected.set(0);
      return;
    }
    try {
      await conn.nc.drain();
    } catch (err) {
      this.log.warn({ err }, 'nats.drain_failed');
      await conn.nc.close().catch(() => undefined);
    }
    this.#connected = false;
    this.metrics?.natsConnected.set(0);
  }

  #backoff(): { initialMs: number; maxMs: number } {
    return this.settings.backoff ?? { initialMs: 250, maxMs: 10_000 };
  }

  #newReady(): void {
    this.#ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A rejection nobody awaits must not crash the process; onFatal is the caller's signal.
    this.#ready.catch(() => undefined);
  }

  /**
   * Connects until it works or stop(); a rebuild also gives up at `rebuildTimeoutMs`. The first
   * connect never gives up: a server that is away is waited for, with /health answering.
   */
  async #build(kind: 'first' | 'rebuild'): Promise<void> {
    const deadline = kind === 'rebuild' ? (this.settings.rebuildTimeoutMs ?? 0) : 0;
    const startedAt = Date.now();
    const delays = new RetryDelays(this.#backoff());
    while (!this.#stopped) {
      try {
        const nc = await connect(this.#options());
        if (this.#stopped) {
          await nc.close();
          return;
        }
        const domain = this.settings.jsDomain ? { domain: this.settings.jsDomain } : {};
        const jsm = await jetstreamManager(nc, { checkAPI: false, ...domain });
        this.#adopt({ nc, js: jetstream(nc, domain), jsm }, kind);
        return;
      } catch (err) {
        this.#lastError = (err as Error).message;
        if (deadline > 0 && Date.now() - startedAt >= deadline) {
          const what = kind === 'first' ? 'not reachable' : `closed for good and not rebuilt (${this.#closedReason ?? 'closed'})`;
          const e = new Error(`NATS ${what} at ${this.settings.servers.join(',')} within ${deadline}ms: ${(err as Error).message}`, {
            cause: err,
          });
          this.log.error({ err: e }, kind === 'first' ? 'nats.first_connect_gave_up' : 'nats.rebuild_gave_up');
          this.#closedReason = e.message;
          this.#rejectReady(e);
          this.onFatal(e);
          return;
        }
        // The last wait ends at the deadline, so giving up happens on time, not a backoff late.
        const delay = deadline > 0 ? Math.max(0, Math.min(delays.next(), startedAt + deadline - Date.now())) : delays.next();
        this.log.warn(
          { servers: this.settings.servers, attempt: delays.attempts, retryInMs: delay, err: (err as Error).message },
          kind === 'first' ? 'nats.connect_failed' : 'nats.rebuild_failed',
        );
        await sleep(delay, this.#abort.signal);
      }
    }
  }

  #options(): ConnectionOptions {
    return {
      ...natsConnectionOptions(this.settings, this.settings.name),
      reconnect: true,
      maxReconnectAttempts: -1,
      // nats.js asks for the delay on every turn of its dial loop, not once per dial, so the
      // curve advances on each dial ('reconnecting' status) and the handler only reads it.
      reconnectDelayHandler: () => this.#reconnectDelay,
      pingInterval: 10_000,
      maxPingOut: 3,
      timeout: 5_000,
      // nats.js otherwise builds an Error (a stack capture) up front for every request, JetStream
      // publishes and acks-with-reply included, in case it fails: RequestError and TimeoutError
      // were 14 % of a publishing process's CPU. Errors keep their types and messages; only
      // the caller's async stack is missing from a timeout.
      noAsyncTraces: true,
    };
  }

  #adopt(conn: Connected, kind: 'first' | 'rebuild'): void {
    const { nc } = conn;
    this.#conn = conn;
    this.#building = undefined;
    this.#closedReason = undefined;
    this.#resetReconnectDelay();
    this.#connected = true;
    this.metrics?.natsConnected.set(1);
    this.log.info({ server: nc.getServer() }, kind === 'first' ? 'nats.connected' : 'nats.rebuilt');
    void this.#watch(nc);
    void nc.closed().then((err) => this.#onClosed(conn, err));
    this.#resolveReady(conn);
    if (kind === 'first') for (const fn of this.#firstListeners) void this.#invoke(fn, conn);
    for (const fn of this.#connectionListeners) void this.#invoke(fn, conn);
  }

  /** nats.js gave up on this connection (it never does on its own for a server that is merely away). */
  #onClosed(conn: Connected, err: Error | void): void {
    if (this.#stopped || this.#conn !== conn) return;
    this.#connected = false;
    this.metrics?.natsConnected.set(0);
    this.#closedReason = `NATS connection closed for good: ${err ? err.message : 'closed'}; rebuilding`;
    this.log.error({ err }, 'nats.closed_for_good');
    this.#newReady();
    this.#building = this.#build('rebuild');
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
          this.#reconnectDelay = this.#reconnectDelays.next();
          this.log.debug({ nextDelayMs: this.#reconnectDelay }, 'nats.reconnecting');
          break;
        case 'reconnect':
          this.#resetReconnectDelay();
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

  #resetReconnectDelay(): void {
    this.#reconnectDelays.reset();
    this.#reconnectDelay = this.#reconnectDelays.next();
  }

  async #invoke(fn: Listener, c: Connected): Promise<void> {
    try {
      await fn(c);
    } catch (err) {
      this.log.error({ err }, 'nats.on_connected_listener_failed');
    }
  }
}
