import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import type { JetStreamClient } from '@nats-io/jetstream';
import { H } from '../events/headers.js';

export interface DeadLetter {
  /** Where the copy goes, e.g. `dlq.ORDERS.inventory-orders`. */
  dlqSubject: string;
  stream: string;
  consumer: string;
  streamSeq: number;
  deliveries: number;
  originalSubject: string;
  reason: string;
  data: Uint8Array;
  headers?: MsgHdrs;
}

/**
 * Copies one message to its dead-letter subject with its original headers and payload plus the
 * Dlq-* headers, and waits for the DLQ stream's publish ack. The message id is derived from the
 * source stream, consumer and sequence, so the consumer's own copy and the advisory copier's copy of the
 * same message de-duplicate to one DLQ entry.
 */
export async function publishDeadLetter(js: JetStreamClient, dl: DeadLetter): Promise<{ seq: number; duplicate: boolean }> {
  const h = natsHeaders();
  // Per consumer: two durables that both dead-letter one message (orders.cancelled reaches
  // inventory-orders and payment-orders) must each keep their copy, not de-duplicate to one.
  const msgID = `dlq:${dl.stream}:${dl.consumer}:${dl.streamSeq}`;
  // First in the header block: nats-server 2.9 finds Nats-Msg-Id by the first occurrence of the
  // text anywhere in the headers, so a value mentioning it (a reason such as "missing
  // Nats-Msg-Id header") ahead of the real header silently turns de-duplication off.
  h.set(H.msgId, msgID);
  if (dl.headers) {
    for (const [k, vs] of dl.headers) {
      if (k === H.msgId) continue;
      for (const v of vs) h.append(k, v);
    }
  }
  const originalId = dl.headers?.get(H.msgId);
  if (originalId) h.set('Dlq-Original-Msg-Id', originalId);
  h.set(H.dlqReason, oneLine(dl.reason));
  h.set(H.dlqStream, dl.stream);
  h.set(H.dlqStreamSeq, String(dl.streamSeq));
  h.set(H.dlqConsumer, dl.consumer);
  h.set(H.dlqDeliveries, String(dl.deliveries));
  h.set(H.dlqSubject, dl.originalSubject);
  h.set(H.dlqTime, new Date().toISOString());
  // No msgID option: the client would re-set the header and move it to the end.
  const ack = await js.publish(dl.dlqSubject, dl.data, { headers: h });
  return { seq: ack.seq, duplicate: ack.duplicate };
}

/** Header values may not hold CR/LF; keep reasons readable and bounded. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 1024);
}
