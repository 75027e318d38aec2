/**
 * Dead-letter advisories of consumers that name a NatsConnection. Advisories are published in the
 * account of the consumer, so the capture on the default connection never sees them: each open
 * NatsConnection that a Consumer with `deadLetter` names gets its own capture (advisory-stream.ts:
 * the stream in that account, created if missing, and a durable of this deployment and this
 * connection). Started when such a consumer appears or its connection is made, moved to a rebuilt
 * connection, stopped when no such consumer is left, the connection is closed, or leadership ends.
 *
 * A durable per connection, not per deployment: two NatsConnections (or one and the default
 * connection) may reach the same account, and each capture must see every advisory there — it
 * copies its own consumers' and acknowledges the others' on its durable only.
 */
import type { Connected } from '@orderflow/kit';
import type { Logger } from 'pino';
import type { AdvisoryStreamCopier } from './advisory-stream.js';

export interface ConnectionAdvisoriesDeps {
  /** The live connection of a NatsConnection (`<namespace>/<name>`), if it is open. */
  connection(key: string): Connected | undefined;
  /** The NatsConnections named by a Consumer with deadLetter; empty while not leading. */
  wanted(): Set<string>;
  /** A started capture on this connection, for the consumers that name `key`. */
  start(key: string, conn: Connected): AdvisoryStreamCopier;
  log: Pick<Logger, 'info' | 'warn'>;
}

export interface ConnectionAdvisories {
  /** Starts, moves and stops captures to fit the resources and connections now; calls are serialised. */
  sync(): Promise<void>;
  /** The connections with a capture running (for tests and logs). */
  keys(): string[];
}

export function createConnectionAdvisories(d: ConnectionAdvisoriesDeps): ConnectionAdvisories {
  const running = new Map<string, { conn: Connected; copier: AdvisoryStreamCopier }>();
  let chain: Promise<void> = Promise.resolve();

  async function apply(): Promise<void> {
    const wanted = d.wanted();
    for (const [key, r] of running) {
      const now = wanted.has(key) ? d.connection(key) : undefined;
      if (now === r.conn) continue;
      running.delete(key);
      await r.copier.stop();
      d.log.info(
        { connection: key },
        now ? 'dead-letter advisory capture moves to the new connection' : 'dead-letter advisory capture stopped',
      );
    }
    for (const key of wanted) {
      if (running.has(key)) continue;
      const conn = d.connection(key);
      if (!conn) continue;
      running.set(key, { conn, copier: d.start(key, conn) });
      d.log.info({ connection: key }, 'dead-letter advisory capture started on the NatsConnection');
    }
  }

  return {
    sync() {
      chain = chain.then(apply).catch((err: unknown) => d.log.warn({ err }, 'dead-letter advisory captures: sync failed'));
      return chain;
    },
    keys: () => [...running.keys()],
  };
}
