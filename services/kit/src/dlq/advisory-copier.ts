/**
 * Copies dead letters announced by JetStream advisories into their DLQ subjects.
 *
 * A message that reaches `max_deliver` stays in its stream and the server only publishes an
 * advisory (core NATS, not persisted). This listens for MAX_DELIVERIES and MSG_TERMINATED
 * advisories, fetches the original by stream sequence and copies it with `publishDeadLetter` —
 * the one DLQ implementation — whose msg id `dlq:<stream>:<consumer>:<seq>` makes the copy idempotent: the
 * consumer runtime's own copy before term() and this copy de-duplicate to one DLQ entry.
 *
 * A queue group means replicas (or several services) running a copier copy each message once.
 *
 * Advisories are core NATS messages: nobody sends one again. So the whole copy — looking the
 * original up by sequence and publishing it to the DLQ — is retried on cockatiel's backoff until it
 * works or the copier stops; a lookup that fails (JetStream briefly unavailable, a leader election,
 * a timeout) must not lose the dead letter.
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { RetryDelays, sleep, type BackoffSettings } from '../faults/backoff.js';
import type { ConsumerSpec } from '../topology.js';
import {
  copyAdvisoryToDeadLetter,
  MAX_DELIVERIES_ADVISORY,
  MSG_TERMINATED_ADVISORY,
  type AdvisoryKind,
  type ConsumerAdvisory,
  type DeadLetterLookup,
} from './advisory-copy.js';

/** A lookup over consumer specs, e.g. `topologyOf(definitions).consumers`. */
export function deadLetterLookup(consumers: readonly ConsumerSpec[]): DeadLetterLookup {
  const m = new Map(consumers.flatMap((c) => (c.deadLetter ? [[`${c.streamName}/${c.durableName}`, c.deadLetter.subject] as const] : [])));
  return (stream, consumer) => m.get(`${stream}/${consumer}`);
}

export interface AdvisoryCopierOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  lookup: DeadLetterLookup;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** Queue group shared by every copier replica. */
  queue?: string;
  /** Tries per dead letter (lookup + DLQ publish) before it is given up and logged; default: until it works or stop(). */
  attempts?: number;
  /** Delays between tries (default 200 ms doubling to 10 s, jittered). */
  backoff?: BackoffSettings;
}

export interface AdvisoryCopierStats {
  copied: number;
  duplicates: number;
  skipped: number;
  /** Tries that failed and were retried. */
  retried: number;
  /** Dead letters given up (attempts exhausted, or the copier stopped meanwhile): logged with stream and sequence. */
  failed: number;
}

export interface AdvisoryCopier {
  start(): void;
  /** Unsubscribes and waits for the copy in progress; safe to call twice. */
  stop(): Promise<void>;
  stats(): AdvisoryCopierStats;
}

export function createAdvisoryCopier(opts: AdvisoryCopierOptions): AdvisoryCopier {
  const { nc, js, jsm, lookup, log } = opts;
  const queue = opts.queue ?? 'orderflow-dlq-copier';
  const attempts = opts.attempts ?? Number.POSITIVE_INFINITY;
  const backoff = opts.backoff ?? { initialMs: 200, maxMs: 10_000 };
  const stats: AdvisoryCopierStats = { copied: 0, duplicates: 0, skipped: 0, retried: 0, failed: 0 };
  let subs: Subscription[] = [];
  let loops: Promise<void>[] = [];
  let abort = new AbortController();

  async function copy(kind: AdvisoryKind, adv: ConsumerAdvisory, signal: AbortSignal): Promise<void> {
    const dlqSubject = lookup(adv.stream, adv.consumer);
    if (!dlqSubject) return;
    const delays = new RetryDelays(backoff);
    for (;;) {
      try {
        return await copyAdvisoryToDeadLetter(js, jsm, { kind, advisory: adv, dlqSubject }, log, stats);
      } catch (err) {
        if (signal.aborted || delays.attempts + 1 >= attempts) throw err;
        const delay = delays.next();
        stats.retried++;
        log.warn(
          { stream: adv.stream, consumer: adv.consumer, streamSeq: adv.stream_seq, kind, err, retryInMs: delay },
          'dead letter copy failed, retrying',
        );
        await sleep(delay, signal);
      }
    }
  }

  async function run(sub: Subscription, kind: AdvisoryKind, signal: AbortSignal): Promise<void> {
    // One message at a time per advisory kind: ordering within the DLQ follows the advisories.
    for await (const m of sub) {
      let adv: ConsumerAdvisory;
      try {
        adv = m.json<ConsumerAdvisory>();
      } catch (err) {
        log.warn({ subject: m.subject, err }, 'unreadable advisory');
        continue;
      }
      try {
        await copy(kind, adv, signal);
      } catch (err) {
        stats.failed++;
        // Nothing will announce this message again: say exactly which one to copy by hand.
        log.error(
          { stream: adv.stream, consumer: adv.consumer, streamSeq: adv.stream_seq, deliveries: adv.deliveries, kind, err },
          'dead letter copy given up',
        );
      }
    }
  }

  return {
    start() {
      if (subs.length > 0) return;
      const maxDel = nc.subscribe(`${MAX_DELIVERIES_ADVISORY}.*.*`, { queue });
      const term = nc.subscribe(`${MSG_TERMINATED_ADVISORY}.*.*`, { queue });
      subs = [maxDel, term];
      abort = new AbortController();
      loops = [run(maxDel, 'max_deliveries', abort.signal), run(term, 'terminated', abort.signal)];
    },
    async stop() {
      const current = subs;
      subs = [];
      // drain() lets the loop finish the messages already received; a closed connection is fine.
      await Promise.all(current.map((s) => (nc.isClosed() ? undefined : s.drain().catch(() => s.unsubscribe()))));
      // A copy still retrying (JetStream away) must not hold shutdown: what remains gets one try.
      abort.abort();
      await Promise.all(loops);
      loops = [];
    },
    stats: () => ({ ...stats }),
  };
}
