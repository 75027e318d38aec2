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
 */
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { ExponentialBackoff, handleAll, retry } from 'cockatiel';
import type { Logger } from 'pino';
import type { ConsumerSpec } from '../topology.js';
import { publishDeadLetter } from './dead-letter.js';

export const MAX_DELIVERIES_ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES';
export const MSG_TERMINATED_ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED';

/** The fields of both advisories this copier uses (server JSON, snake_case). */
interface ConsumerAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
  reason?: string;
}

/** Where dead letters of `<stream>/<consumer>` go; undefined = not ours, ignore the advisory. */
export type DeadLetterLookup = (stream: string, consumer: string) => string | undefined;

/** A lookup over consumer specs, e.g. `platformTopology().consumers`. */
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
  /** Tries per message when the DLQ publish fails (e.g. DLQ stream briefly missing). */
  attempts?: number;
}

export interface AdvisoryCopierStats {
  copied: number;
  duplicates: number;
  skipped: number;
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
  const policy = retry(handleAll, { maxAttempts: Math.max(0, (opts.attempts ?? 3) - 1), backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 2000 }) });
  const stats: AdvisoryCopierStats = { copied: 0, duplicates: 0, skipped: 0, failed: 0 };
  let subs: Subscription[] = [];
  let loops: Promise<void>[] = [];

  async function copy(kind: 'max_deliveries' | 'terminated', adv: ConsumerAdvisory): Promise<void> {
    const dlqSubject = lookup(adv.stream, adv.consumer);
    if (!dlqSubject) return;
    const ctx = { stream: adv.stream, consumer: adv.consumer, streamSeq: adv.stream_seq, deliveries: adv.deliveries, kind };
    const original = await jsm.streams.getMessage(adv.stream, { seq: adv.stream_seq });
    if (!original) {
      // Terminated messages under workqueue/interest retention may be gone already; the consumer
      // runtime copied them before term(), so there is nothing left to do.
      stats.skipped++;
      log.info(ctx, 'dead letter skipped: original message no longer in the stream');
      return;
    }
    const reason = kind === 'max_deliveries' ? 'max_deliveries' : adv.reason ? `terminated: ${adv.reason}` : 'terminated';
    const r = await policy.execute(() =>
      publishDeadLetter(js, {
        dlqSubject,
        stream: adv.stream,
        consumer: adv.consumer,
        streamSeq: adv.stream_seq,
        deliveries: adv.deliveries,
        originalSubject: original.subject,
        reason,
        data: original.data,
        headers: original.header,
      }),
    );
    if (r.duplicate) stats.duplicates++;
    else stats.copied++;
    log.info({ ...ctx, dlqSubject, dlqSeq: r.seq, duplicate: r.duplicate }, 'dead letter copied');
  }

  async function run(sub: Subscription, kind: 'max_deliveries' | 'terminated'): Promise<void> {
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
        await copy(kind, adv);
      } catch (err) {
        stats.failed++;
        log.error({ stream: adv.stream, consumer: adv.consumer, streamSeq: adv.stream_seq, err }, 'dead letter copy failed');
      }
    }
  }

  return {
    start() {
      if (subs.length > 0) return;
      const maxDel = nc.subscribe(`${MAX_DELIVERIES_ADVISORY}.*.*`, { queue });
      const term = nc.subscribe(`${MSG_TERMINATED_ADVISORY}.*.*`, { queue });
      subs = [maxDel, term];
      loops = [run(maxDel, 'max_deliveries'), run(term, 'terminated')];
    },
    async stop() {
      const current = subs;
      subs = [];
      // drain() lets the loop finish the messages already received; a closed connection is fine.
      await Promise.all(current.map((s) => (nc.isClosed() ? undefined : s.drain().catch(() => s.unsubscribe()))));
      await Promise.all(loops);
      loops = [];
    },
    stats: () => ({ ...stats }),
  };
}
