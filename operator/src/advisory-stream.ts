/**
 * Dead letters announced by JetStream advisories, without losing one to a leader handover.
 *
 * A message that reaches `max_deliver` stays in its stream and the server only publishes an
 * advisory — core NATS, sent once, stored nowhere. A copier that merely subscribes misses every
 * advisory published while no leader is subscribed (the seconds of a handover, a restart). So the
 * advisories are captured in a stream of their own (`ADVISORY_STREAM`, default
 * ORDERFLOW_ADVISORIES: `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>` and `…MSG_TERMINATED.>`,
 * limits retention, a day) and the leader reads them through a durable consumer of this operator
 * deployment: what no leader read waits there, and an advisory is acknowledged only after its dead
 * letter was copied (or it is not ours). The copy's message id
 * (`dlq:<stream>:<consumer>:<seq>`) makes a second copy — the services' own copier, a redelivery —
 * a duplicate the DLQ stream drops within its duplicate window.
 *
 * One stream per NATS account, shared by every operator in it (created if missing, never
 * changed); one durable per operator deployment (its Lease), created delivering new advisories
 * only, so a new deployment does not replay a day of other people's history. A capture that ends
 * for good (removeCapture: its NatsConnection deleted, no Consumer with deadLetter on it any more)
 * deletes its durable, and the stream only when that capture created it (the durable named in the
 * stream's metadata, 2.10+) and no consumer — another deployment's, the default connection's — is
 * left on it.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  advisoryKind,
  connectedAtLeast,
  copyAdvisoryToDeadLetter,
  MAX_DELIVERIES_ADVISORY,
  MSG_TERMINATED_ADVISORY,
  RetryDelays,
  type BackoffSettings,
  type ConsumerAdvisory,
  type DeadLetterLookup,
} from '@orderflow/kit';
import type { Logger } from 'pino';

export { MAX_DELIVERIES_ADVISORY, MSG_TERMINATED_ADVISORY, type DeadLetterLookup };
export const DEFAULT_ADVISORY_STREAM = 'ORDERFLOW_ADVISORIES';
/** Stream metadata key naming the durable of the capture that created the stream. */
export const CAPTURE_CREATOR = 'orderflow.dev/advisory-capture';

const DAY_NS = 24 * 3600 * 1e9;

export interface AdvisoryStreamOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  lookup: DeadLetterLookup;
  /** False while the lookup cannot be trusted yet (informer caches not synced): advisories wait. */
  ready: () => boolean;
  stream?: string;
  /** This deployment's durable consumer name. */
  durable: string;
  /** Replicas of the stream when this operator creates it. */
  replicas?: number;
  /** Delays between tries of one advisory (nak delay) and between restarts of the reader. */
  backoff?: BackoffSettings;
}

export interface AdvisoryStreamStats {
  copied: number;
  duplicates: number;
  /** Advisories of consumers that are not ours, acknowledged without a copy. */
  ignored: number;
  /** Originals no longer in their stream (terminated under workqueue/interest: the runtime copied them). */
  skipped: number;
  /** Copies that failed and were handed back for a later try. */
  retried: number;
}

export interface AdvisoryStreamCopier {
  start(): void;
  /** Stops reading and waits for the advisory in progress; idempotent. */
  stop(): Promise<void>;
  stats(): AdvisoryStreamStats;
}

/** A durable name from any text (a Lease's namespace and name): JetStream names take no dots, wildcards or spaces. */
export const durableName = (text: string): string => text.replace(/[^A-Za-z0-9_-]/g, '_');

const isNotFound = (err: unknown, code: number): boolean => err instanceof JetStreamApiError && err.code === code;

export interface CaptureRemoval {
  /** The durable was there and is deleted. */
  durable: boolean;
  /** The stream was this capture's, nothing else read it, and it is deleted. */
  stream: boolean;
}

/**
 * Deletes what a capture made: its durable, then the stream if this durable created it and no
 * consumer is left on it. A durable or stream already gone is no error.
 */
export async function removeCapture(jsm: JetStreamManager, o: { stream?: string; durable: string }): Promise<CaptureRemoval> {
  const stream = o.stream ?? DEFAULT_ADVISORY_STREAM;
  const removed: CaptureRemoval = { durable: false, stream: false };
  try {
    removed.durable = await jsm.consumers.delete(stream, o.durable);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) return removed;
    if (!isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
  }
  let info;
  try {
    info = await jsm.streams.info(stream);
  } catch (err) {
    if (isNotFound(err, JetStreamApiCodes.StreamNotFound)) return removed;
    throw err;
  }
  if (info.config.metadata?.[CAPTURE_CREATOR] !== o.durable || info.state.consumer_count > 0) return removed;
  try {
    removed.stream = await jsm.streams.delete(stream);
  } catch (err) {
    if (!isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw err;
  }
  return removed;
}

export function createAdvisoryStreamCopier(o: AdvisoryStreamOptions): AdvisoryStreamCopier {
  const stream = o.stream ?? DEFAULT_ADVISORY_STREAM;
  const backoff = o.backoff ?? { initialMs: 200, maxMs: 10_000 };
  const { jsm, js, log } = o;
  const stats: AdvisoryStreamStats = { copied: 0, duplicates: 0, ignored: 0, skipped: 0, retried: 0 };
  let running = false;
  let loop: Promise<void> | undefined;
  let messages: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;

  async function ensure(): Promise<void> {
    try {
      await jsm.streams.info(stream);
    } catch (err) {
      if (!isNotFound(err, JetStreamApiCodes.StreamNotFound)) throw err;
      await jsm.streams.add({
        name: stream,
        subjects: [`${MAX_DELIVERIES_ADVISORY}.>`, `${MSG_TERMINATED_ADVISORY}.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: o.replicas ?? 1,
        max_age: DAY_NS,
        max_bytes: 256 * 1024 * 1024,
        // Metadata is kept from 2.10 on; on older servers the stream names no creator and is never deleted.
        ...(connectedAtLeast(jsm, [2, 10, 0]) ? { metadata: { [CAPTURE_CREATOR]: o.durable } } : {}),
      });
      log.info({ stream }, 'advisory stream created');
    }
    try {
      await jsm.consumers.info(stream, o.durable);
    } catch (err) {
      if (!isNotFound(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
      await jsm.consumers.add(stream, {
        durable_name: o.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        ack_wait: 30e9,
        max_deliver: -1,
        max_ack_pending: 64,
      });
      log.info({ stream, durable: o.durable }, 'advisory consumer created');
    }
  }

  /** The nak delay for a message's n-th delivery, from cockatiel's curve. */
  function delayFor(deliveries: number): number {
    const d = new RetryDelays(backoff);
    let ms = 0;
    for (let i = 0; i < Math.min(deliveries, 30); i++) ms = d.next();
    return ms;
  }

  async function copy(m: JsMsg): Promise<void> {
    let adv: ConsumerAdvisory;
    try {
      adv = m.json<ConsumerAdvisory>();
    } catch (err) {
      log.warn({ subject: m.subject, err }, 'unreadable advisory');
      m.term();
      return;
    }
    const dlqSubject = o.lookup(adv.stream, adv.consumer);
    if (!dlqSubject) {
      stats.ignored++;
      m.ack();
      return;
    }
    await copyAdvisoryToDeadLetter(js, jsm, { kind: advisoryKind(m.subject), advisory: adv, dlqSubject }, log, stats);
    await m.ackAck();
  }

  async function handle(m: JsMsg): Promise<void> {
    if (!o.ready()) {
      // The resources are not known yet: nothing can tell ours from others'. Later.
      m.nak(delayFor(m.info.deliveryCount));
      return;
    }
    try {
      await copy(m);
    } catch (err) {
      stats.retried++;
      const delay = delayFor(m.info.deliveryCount);
      log.warn(
        { subject: m.subject, deliveries: m.info.deliveryCount, err, retryInMs: delay },
        'dead letter copy failed; the advisory waits in the stream for another try',
      );
      m.nak(delay);
    }
  }

  /** Waits `ms`, or less when stop() is called. */
  const pause = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  async function run(): Promise<void> {
    const delays = new RetryDelays(backoff);
    while (running) {
      try {
        await ensure();
        const consumer = await js.consumers.get(stream, o.durable);
        // One at a time: an advisory the leader holds when it stops is the only one redelivered late.
        messages = await consumer.consume({ max_messages: 1 });
        delays.reset();
        for await (const m of messages) {
          await handle(m);
          if (!running) break;
        }
        // The reader ended by itself (consumer or stream deleted): set them up again, not in a tight loop.
        if (running) await pause(delays.next());
      } catch (err) {
        if (!running) break;
        const ms = delays.next();
        log.warn({ stream, durable: o.durable, err, retryInMs: ms }, 'advisory stream reader failed; restarting');
        await pause(ms);
      } finally {
        messages = undefined;
      }
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      if (!running) return;
      running = false;
      wake?.();
      await messages?.close().catch(() => undefined);
      await loop;
      loop = undefined;
    },
    stats: () => ({ ...stats }),
  };
}
