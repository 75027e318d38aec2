/**
 * An order's events across the platform's streams, read with short-lived ordered consumers
 * (public JetStream API, no durable state left behind) from a little before the order was
 * created. Each event carries its trace id from the `traceparent` header for a Jaeger link.
 */
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { H, type Names } from '@orderflow/kit';
import type { TimelineEvent } from '../web/api-types.js';

export type { TimelineEvent };

export interface TimelineQuery {
  orderIds: ReadonlySet<string>;
  correlationId?: string;
  /** Read messages stored from this time on. */
  since: Date;
}

export interface TimelineOptions {
  js: JetStreamClient;
  names: Names;
  streams: string[];
  dlqStream: string;
  jaegerUiUrl?: string;
  /** Messages read per stream at most (a lookup must stay cheap on a busy stream). */
  maxPerStream?: number;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

export function traceIdOf(traceparent: string | undefined): string | undefined {
  const m = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  return m && !/^0+$/.test(m[1]!) ? m[1] : undefined;
}

function parse(data: Uint8Array): unknown {
  const text = new TextDecoder().decode(data);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const field = (v: unknown, k: string): string | undefined => {
  const x = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof x === 'string' ? x : undefined;
};

function toEvent(
  o: TimelineOptions,
  stream: string,
  seq: number,
  subject: string,
  time: Date,
  h: MsgHdrs | undefined,
  data: unknown,
): TimelineEvent {
  const get = (k: string) => h?.get(k) || undefined;
  const traceId = traceIdOf(get(H.traceparent));
  const dlq = stream === o.dlqStream;
  const original = dlq ? (get(H.dlqSubject) ?? subject) : subject;
  return {
    stream,
    seq,
    subject,
    type: get(H.eventType) ?? o.names.eventType(original),
    time: time.toISOString(),
    eventId: get(H.eventId) ?? get(H.msgId) ?? get('Dlq-Original-Msg-Id'),
    version: get(H.eventVersion) ?? field(data, 'version'),
    orderId: field(data, 'orderId'),
    correlationId: get(H.correlationId) ?? field(data, 'correlationId'),
    traceId,
    traceUrl: traceId && o.jaegerUiUrl ? `${o.jaegerUiUrl}/trace/${traceId}` : undefined,
    deadLetter: dlq ? { reason: get(H.dlqReason) ?? '', consumer: get(H.dlqConsumer) ?? '', dlqSeq: seq } : undefined,
    replayOf: get('Replay-Of-Msg-Id'),
    data,
  };
}

/** Events of the given orders (or correlation id), oldest first, over every stream. */
export async function orderTimeline(o: TimelineOptions, q: TimelineQuery): Promise<{ events: TimelineEvent[]; truncated: string[] }> {
  const max = o.maxPerStream ?? 20_000;
  const events: TimelineEvent[] = [];
  const truncated: string[] = [];
  await Promise.all(
    o.streams.map(async (stream) => {
      const consumer = await o.js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: q.since.toISOString() });
      try {
        let read = 0;
        for (;;) {
          const batch = await consumer.fetch({ max_messages: 500, expires: 1000 });
          let got = 0;
          let done = false;
          for await (const m of batch) {
            got++;
            read++;
            const data = parse(m.data);
            const orderId = field(data, 'orderId');
            const corr = m.headers?.get(H.correlationId) || field(data, 'correlationId');
            if ((orderId && q.orderIds.has(orderId)) || (q.correlationId && corr === q.correlationId)) {
              events.push(toEvent(o, stream, m.seq, m.subject, m.time, m.headers, data));
            }
            if (m.info.pending === 0) done = true;
          }
          if (done || got === 0) break;
          if (read >= max) {
            truncated.push(stream);
            break;
          }
        }
      } finally {
        await consumer.delete().catch(() => undefined);
      }
    }),
  );
  events.sort((a, b) => a.time.localeCompare(b.time) || a.stream.localeCompare(b.stream) || a.seq - b.seq);
  return { events, truncated };
}
