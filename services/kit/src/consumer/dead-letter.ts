import type { JsMsg } from '@nats-io/jetstream';
import type { NatsManager } from '../nats/connection.js';
import { publishDeadLetter } from '../dlq/dead-letter.js';
import { DependencyUnavailableError } from '../faults/classify.js';
import { errorMessage } from './failure.js';

export interface DeadLetterTarget {
  nats: NatsManager;
  dlqSubject: string;
  stream: string;
  durable: string;
}

/**
 * Copies a message to its dead-letter subject and waits for the DLQ stream's ack; the caller
 * term()s it only then (under workqueue/interest retention a terminated message is gone). A copy
 * that could not be made is a NATS fault, not the message's: it is thrown as
 * DependencyUnavailableError so the runtime holds the message and pauses instead of losing it or
 * spending a delivery on it.
 */
export async function copyToDeadLetter(t: DeadLetterTarget, msg: JsMsg, reason: string): Promise<void> {
  const conn = t.nats.connection();
  if (!conn) throw new DependencyUnavailableError('nats', `dead letter for ${t.stream}#${msg.seq} not copied: no NATS connection`);
  try {
    await publishDeadLetter(conn.js, {
      dlqSubject: t.dlqSubject,
      stream: t.stream,
      consumer: t.durable,
      streamSeq: msg.seq,
      deliveries: msg.info.deliveryCount,
      originalSubject: msg.subject,
      reason,
      data: msg.data,
      headers: msg.headers,
    });
  } catch (err) {
    throw new DependencyUnavailableError(
      'nats',
      `dead letter for ${t.stream}#${msg.seq} not copied to ${t.dlqSubject}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}
