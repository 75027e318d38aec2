/**
 * One dead letter announced by a JetStream advisory, copied into its DLQ subject: the step shared
 * by the services' core-NATS copier (advisory-copier.ts) and the operator's stream-backed one.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { publishDeadLetter } from './dead-letter.js';

export const MAX_DELIVERIES_ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES';
export const MSG_TERMINATED_ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED';

/** The fields of both advisories used here (server JSON, snake_case). */
export interface ConsumerAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
  reason?: string;
}

export type AdvisoryKind = 'max_deliveries' | 'terminated';

/** Which advisory a message on `subject` is. */
export const advisoryKind = (subject: string): AdvisoryKind =>
  subject.startsWith(MAX_DELIVERIES_ADVISORY) ? 'max_deliveries' : 'terminated';

/** Where dead letters of `<stream>/<consumer>` go; undefined = not ours, ignore the advisory. */
export type DeadLetterLookup = (stream: string, consumer: string) => string | undefined;

/** One advisory to copy: which kind, what it says, and where its dead letters go. */
export interface AdvisoryCopy {
  kind: AdvisoryKind;
  advisory: ConsumerAdvisory;
  dlqSubject: string;
}

/** The caller's counters; each copy adds one to exactly one of them. */
export interface AdvisoryCopyCounts {
  copied: number;
  duplicates: number;
  /** Originals no longer in their stream. */
  skipped: number;
}

/**
 * Looks the original up by stream sequence and publishes it to the DLQ subject with
 * `publishDeadLetter`, whose msg id `dlq:<stream>:<consumer>:<seq>` makes a second copy (the
 * consumer runtime's own before term(), another copier) a duplicate. Throws when JetStream does not
 * answer: the caller decides how to try again (an advisory is never sent twice).
 */
export async function copyAdvisoryToDeadLetter(
  js: JetStreamClient,
  jsm: JetStreamManager,
  { kind, advisory: adv, dlqSubject }: AdvisoryCopy,
  log: Pick<Logger, 'info'>,
  counts: AdvisoryCopyCounts,
): Promise<void> {
  const ctx = { stream: adv.stream, consumer: adv.consumer, streamSeq: adv.stream_seq, deliveries: adv.deliveries, kind };
  const original = await jsm.streams.getMessage(adv.stream, { seq: adv.stream_seq });
  if (!original) {
    // Terminated messages under workqueue/interest retention may be gone already; the consumer
    // runtime copied them before term(), so there is nothing left to do.
    counts.skipped++;
    log.info(ctx, 'dead letter skipped: original message no longer in the stream');
    return;
  }
  const r = await publishDeadLetter(js, {
    dlqSubject,
    stream: adv.stream,
    consumer: adv.consumer,
    streamSeq: adv.stream_seq,
    deliveries: adv.deliveries,
    originalSubject: original.subject,
    reason: kind === 'max_deliveries' ? 'max_deliveries' : adv.reason ? `terminated: ${adv.reason}` : 'terminated',
    data: original.data,
    headers: original.header,
  });
  if (r.duplicate) counts.duplicates++;
  else counts.copied++;
  log.info({ ...ctx, dlqSubject, dlqSeq: r.seq, duplicate: r.duplicate }, 'dead letter copied');
}
