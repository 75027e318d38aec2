/**
 * Dead-letter advisories of consumers that name a NatsConnection. Advisories are published in the
 * account of the consumer, so the capture on the default connection never sees them: each open
 * NatsConnection that a Consumer with `deadLetter` names gets its own capture (advisory-stream.ts:
 * the stream in that account, created if missing, and a durable of this deployment and this
 * connection). Started when such a consumer appears or its connection is made, moved to a rebuilt
 * connection, stopped when the connection is closed or leadership ends — and removed (its durable,
 * and the stream if the capture made it and nothing else reads it) when no such consumer is left or
 * the NatsConnection is deleted: nothing would read that durable again, and the advisories it holds
 * would pile up for a day in every account the operator ever reached. A durable that cannot be
 * removed then (no open connection, the server away) is tried again at every sync — each resync,
 * each connection made — until it is gone or its NatsConnection is deleted.
 *
 * A NatsConnection being deleted keeps its capture while resources still delete through it (its
 * finalizer holds it): the capture ends only with retire(), when the finalizer is about to come off.
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
   * The NatsConnections named by a Consumer with deadLetter (being deleted or not: a capture runs
   * until retire()); undefined while not leading — captures then stop but stay, for the next leader.
   */
  wanted(): Set<string> | undefined;
  /** Whether the NatsConnection `key` still exists: a durable left behind is tried again only while it does. */
  exists(key: string): boolean;
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
   * Stops the capture of `key` for good and removes what it made (its NatsConnection's finalizer
   * is coming off). Resolves to why something may be left, or undefined when nothing is known to
   * be; `expected`: a capture should exist (a Consumer with deadLetter names the connection) even
   * if none ran here.
   */
  retire(key: string, expected: boolean): Promise<string | undefined>;
  /** The connections with a capture running (for tests and logs). */
  keys(): string[];
  /**
   * Whether a durable of `key`'s capture is (or may be) in its account: a capture runs, or one that
   * ended left its durable, to be removed when a connection is open.
   */
  leftover(key: string): boolean;
}

const NO_CONNECTION = 'no open connection to its server';

export function createConnectionAdvisories(d: ConnectionAdvisoriesDeps): ConnectionAdvisories {
  const running = new Map<string, { conn: Connected; copier: AdvisoryStreamCopier }>();
  let chain: Promise<unknown> = Promise.resolve();
  /** A sync queued and not begun: a second one would only do the same work again. */
  let queued: Promise<void> | undefined;
  /** Captures stopped for good whose durable is not removed yet, with why the last try failed. */
  const unremoved = new Map<string, string>();
  /** Retired (their NatsConnection's finalizer comes off): never started again while it exists. */
  const retired = new Set<string>();
  /** Captures stopped while still wanted (their connection closed): their durable stays for the next start. */
  const idle = new Set<string>();
  /** Keys whose durable was said to be left: said once, not at every resync that tries again. */
  const warned = new Set<string>();

  /** One try, never blocking longer than the JetStream calls' timeouts; true when nothing is left. */
  async function remove(key: string, conn: Connected | undefined): Promise<boolean> {
    // Left until the removal went through: meanwhile its NatsConnection keeps the finalizer and the connection.
    if (!unremoved.has(key)) unremoved.set(key, 'removal under way');
    let why = NO_CONNECTION;
    if (conn) {
      try {
        const removed = await d.remove(key, conn);
        unremoved.delete(key);
        warned.delete(key);
        if (removed.durable || removed.stream)
          d.log.info({ connection: key, ...removed }, 'dead-letter advisory capture removed from the account');
        return true;
      } catch (err) {
        why = err instanceof Error ? err.message : String(err);
      }
    }
    unremoved.set(key, why);
    if (!warned.has(key)) {
      warned.add(key);
      d.log.warn(
        { connection: key, err: why },
        'dead-letter advisory capture could not be removed; left in the account, tried again while a connection to its server is open',
      );
    }
    return false;
  }

  async function apply(): Promise<void> {
    const wanted = d.wanted();
    if (wanted) for (const key of retired) if (!d.exists(key)) retired.delete(key);
    for (const [key, r] of running) {
      const now = wanted?.has(key) && !retired.has(key) ? d.connection(key) : undefined;
      if (now === r.conn) continue;
      running.delete(key);
      await r.copier.stop();
      if (wanted && !wanted.has(key)) {
        // Still there until removed (leftover()), also while the copier stops.
        unremoved.set(key, 'removal under way');
        d.log.info({ connection: key }, 'dead-letter advisory capture stopped: no Consumer with deadLetter uses the connection');
        // The connection now: the one the capture ran on may have been replaced meanwhile.
        await remove(key, d.connection(key) ?? r.conn);
      } else {
        if (wanted) idle.add(key);
        d.log.info(
          { connection: key },
          now ? 'dead-letter advisory capture moves to the new connection' : 'dead-letter advisory capture stopped',
        );
      }
    }
    if (!wanted) return;
    // A capture stopped with its connection whose Consumers no longer want it: its durable goes too.
    for (const key of [...idle]) {
      if (wanted.has(key) && !retired.has(key)) continue;
      idle.delete(key);
      if (!retired.has(key) && d.exists(key)) await remove(key, d.connection(key));
    }
    // Durables left behind: tried again through the connection open now, until removed. Wanted
    // again, the capture takes its durable back; its NatsConnection gone, nothing can reach it.
    for (const key of [...unremoved.keys()]) {
      if (wanted.has(key) || !d.exists(key)) {
        unremoved.delete(key);
        warned.delete(key);
      } else {
        const conn = d.connection(key);
        if (conn) await remove(key, conn);
      }
    }
    for (const key of wanted) {
      if (running.has(key) || retired.has(key)) continue;
      const conn = d.connection(key);
      if (!conn) continue;
      idle.delete(key);
      running.set(key, { conn, copier: d.start(key, conn) });
      d.log.info({ connection: key }, 'dead-letter advisory capture started on the NatsConnection');
    }
  }

  async function retire(key: string, expected: boolean): Promise<string | undefined> {
    retired.add(key);
    const r = running.get(key);
    if (r) {
      running.delete(key);
      await r.copier.stop();
    }
    // The connection now, not when the call was queued: a capture removed before may have held the chain.
    const conn = d.connection(key);
    if (conn) await remove(key, conn);
    else if (r || expected || unremoved.has(key) || idle.has(key)) unremoved.set(key, NO_CONNECTION);
    idle.delete(key);
    // Nothing known to be there (no capture ran in this process, or its removal went through) is nothing to report.
    const why = unremoved.get(key);
    unremoved.delete(key);
    warned.delete(key);
    return why;
  }

  /** Runs `fn` after every call queued before it; a failure does not stop the next. */
  function serialised<T>(fn: () => Promise<T>): Promise<T> {
    const p = chain.then(fn);
    chain = p.catch(() => undefined);
    return p;
  }

  return {
    sync: () =>
      (queued ??= serialised(() => {
        queued = undefined;
        return apply();
      }).catch((err: unknown) => d.log.warn({ err }, 'dead-letter advisory captures: sync failed'))),
    retire: (key, expected) => serialised(() => retire(key, expected)),
    keys: () => [...running.keys()],
    leftover: (key) => unremoved.has(key) || running.has(key),
  };
}
