/**
 * One NATS connection per NatsConnection resource, made when a resource first needs it and kept
 * while the settings it is made from stay the same (the fingerprint: servers, credentials, TLS,
 * domain — not the generation, which deletion bumps too): a change replaces it, a deleted or
 * unreferenced resource closes it. Each is the kit's NatsManager — jittered backoff for the first
 * connect, reconnect forever, rebuilt when nats.js closes it for good — but never fatal: a
 * connection that cannot be made is a Ready=False status, not an operator exit.
 */
import { NatsManager, type BackoffSettings, type Connected, type NatsAccess } from '@orderflow/kit';
import type { Logger } from 'pino';

interface Entry {
  fingerprint: string;
  manager: NatsManager;
}

export interface ConnectionPoolOptions {
  log: Logger;
  /** The client name servers show for these connections. */
  clientName: string;
  /** Called with the resource key (`<namespace>/<name>`) whenever its connection is (re)made. */
  onConnection?: (key: string) => void;
  backoff?: BackoffSettings;
}

export class ConnectionPool {
  readonly #entries = new Map<string, Entry>();
  readonly #closing = new Set<Promise<void>>();

  constructor(private readonly o: ConnectionPoolOptions) {}

  /** The manager for `key` built from `access`; replaces one built from another fingerprint. */
  acquire(key: string, fingerprint: string, access: NatsAccess): NatsManager {
    const current = this.#entries.get(key);
    if (current?.fingerprint === fingerprint) return current.manager;
    if (current) {
      this.o.log.info({ connection: key }, 'NatsConnection changed: reconnecting with the new settings');
      this.#close(current);
    }
    const manager = new NatsManager(
      { ...access, name: this.o.clientName, rebuildTimeoutMs: 0, ...(this.o.backoff ? { backoff: this.o.backoff } : {}) },
      this.o.log.child({ connection: key }),
    );
    manager.onConnection(() => this.o.onConnection?.(key));
    this.#entries.set(key, { fingerprint, manager });
    manager.start();
    return manager;
  }

  /** The live connection of `key`, if one is built and connected. */
  connection(key: string): Connected | undefined {
    return this.#entries.get(key)?.manager.connection();
  }

  /** The manager of `key` as it is, whatever its fingerprint (a resource being deleted uses the last one). */
  current(key: string): NatsManager | undefined {
    return this.#entries.get(key)?.manager;
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Closes `key`'s connection (drained); nothing when there is none. */
  release(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.o.log.info({ connection: key }, 'NatsConnection closed: deleted or no longer referenced');
    this.#close(e);
    this.#entries.delete(key);
  }

  async stop(): Promise<void> {
    for (const [key, e] of this.#entries) {
      this.#close(e);
      this.#entries.delete(key);
    }
    await Promise.all([...this.#closing]);
  }

  #close(e: Entry): void {
    const p = e.manager
      .stop()
      .catch((err: unknown) => this.o.log.warn({ err }, 'closing a NatsConnection failed'))
      .finally(() => this.#closing.delete(p));
    this.#closing.add(p);
  }
}
