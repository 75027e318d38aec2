/**
 * Dead-letter advisories of consumers that name a NatsConnection. Advisories are published in the
 * account of the consumer, so the capture on the default connection never sees them: each open
 * NatsConnection that a Consumer with `deadLetter` names gets its own capture (advisory-stream.ts:
 * the stream in that account, created if missing, and a durable of this deployment and this
 * connection). Started when such a consumer appears or its connection is made, moved to a rebuilt
 * connection, stopped when the connection is closed or leadership ends — and removed (its durable,
 * and the stream if the capture made it and nothing else reads it) when no such consumer is left or
 * the NatsConnection is deleted: nothing would read that durable again, and the advisories it holds
 * would pile up for a day in every account the operator ever reached.
 *
 * A durable per connection, not per deployment: two NatsConnections (or one and the default
 * connection) may reach the same account, and each capture must see every advisory there — it
 * copies its own consumers' and acknowledges the others' on its durable only.
 */
import type { Connected } from '@orderflow/kit';
import type { Logger } from 'pino';
import type { AdvisoryStreamCopier, CaptureRemoval } from './advisory-stream.js';

export interface ConnectionAdvisoriesDeps {
  /** The live connection of a NatsConnection (`<namespace>/<name>`), if it is open. */
  connection(key: string): Connected | undefined;
  /**
   * The NatsConnections named by a Consumer with deadLetter (none being deleted); undefined while
   * not leading — captures then stop but stay, for the next leader.
   */
  wanted(): Set<string> | undefined;
  /** A started capture on this connection, for the consumers that name `key`. */
  start(key: string, conn: Connected): AdvisoryStreamCopier;
  /** Deletes what the capture of `key` made in its account, through `conn`. */
  remove(key: string, conn: Connected): Promise<CaptureRemoval>;
  log: Pick<Logger, 'info' | 'warn'>;
}

export interface ConnectionAdvisories {
  /** Starts, moves, stops and removes captures to fit the resources and connections now; calls are serialised. */
  sync(): Promise<void>;
  /**
   * Stops the capture of `key` and removes what it made (its NatsConnection is being deleted).
   * Resolves to why something may be left, or undefined when nothing is known to be; `expected`:
   * a capture should exist (a Consumer with deadLetter names the connection) even if none ran here.
   */
  retire(key: string, expected: boolean): Promise<string | undefined>;
  /** The connections with a capture running (for tests and logs). */
  keys(): string[];
}

export function createConnectionAdvisories(d: ConnectionAdvisoriesDeps): ConnectionAdvisories {
  const running = new Map<string, { conn: Connected; copier: AdvisoryStreamCopier }>();
  let chain: Promise<unknown> = Promise.resolve();
  /** Why the last removal of a capture failed, until one succeeds or its NatsConnection is retired. */
  const unremoved = new Map<string, string>();

  /** One try, never blocking longer than the JetStream calls' timeouts. */
  async function remove(key: string, conn: Connected): Promise<void> {
    try {
      const removed = await d.remove(key, conn);
      unremoved.delete(key);
      if (removed.durable || removed.stream)
        d.log.info({ connection: key, ...removed }, 'dead-letter advisory capture removed from the account');
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      unremoved.set(key, why);
      d.log.warn({ connection: key, err: why }, 'dead-letter advisory capture could not be removed; left in the account');
    }
  }

  async function apply(): Promise<void> {
    const wanted = d.wanted();
    for (const [key, r] of running) {
      const now = wanted?.has(key) ? d.connection(key) : undefined;
      if (now === r.conn) continue;
      running.delete(key);
      await r.copier.stop();
      if (wanted && !wanted.has(key)) {
        d.log.info({ connection: key }, 'dead-letter advisory capture stopped: no Consumer with deadLetter uses the connection');
        await remove(key, r.conn);
      } else {
        d.log.info(
          { connection: key },
          now ? 'dead-letter advisory capture moves to the new connection' : 'dead-letter advisory capture stopped',
        );
      }
    }
    for (const key of wanted ?? []) {
      if (running.has(key)) continue;
      const conn = d.connection(key);
      if (!conn) continue;
      running.set(key, { conn, copier: d.start(key, conn) });
      d.log.info({ connection: key }, 'dead-letter advisory capture started on the NatsConnection');
    }
  }

  async function retire(key: string, expected: boolean): Promise<string | undefined> {
    const r = running.get(key);
    if (r) {
      running.delete(key);
      await r.copier.stop();
    }
    // The connection now, not when the call was queued: a capture removed before may have held the chain.
    const conn = d.connection(key);
    if (conn) await remove(key, conn);
    else if (r || expected) unremoved.set(key, 'no open connection to its server');
    // Nothing known to be there (no capture ran in this process, or its removal went through) is nothing to report.
    const why = unremoved.get(key);
    unremoved.delete(key);
    return why;
  }

  /** Runs `fn` after every call queued before it; a failure does not stop the next. */
  function serialised<T>(fn: () => Promise<T>): Promise<T> {
    const p = chain.then(fn);
    chain = p.catch(() => undefined);
    return p;
  }

  return {
    sync: () => serialised(apply).catch((err: unknown) => d.log.warn({ err }, 'dead-letter advisory captures: sync failed')),
    retire: (key, expected) => serialised(() => retire(key, expected)),
    keys: () => [...running.keys()],
  };
}
