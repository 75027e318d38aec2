/**
 * Consumers with `deadLetter` need a stream that captures their DLQ subject. The platform
 * topology lists one (`DLQ`, `dlq.>`); a Consumer resource applied on its own may not have one, so
 * the operator derives it from the subject using the same naming as `Names`:
 * `<ns>.dlq.ORDERS.c` → stream `<NS>_DLQ` on `<ns>.dlq.>`.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { StreamSpec } from '../topology.js';
import { reconcileStream, type ApplyResult } from './apply.js';

/** Dead letters are kept a month: someone has to look at them (as the platform's DLQ stream, platformStreams). */
const DLQ_MAX_AGE = '720h';

/** The stream spec for a DLQ subject, or an error text when the subject has no `dlq` token. */
export function deadLetterStreamSpec(subject: string): StreamSpec | { error: string } {
  const tokens = subject.split('.');
  const i = tokens.indexOf('dlq');
  if (i < 0 || i === tokens.length - 1) {
    return {
      error:
        `deadLetter.subject "${subject}" is not captured by any stream and has no "dlq" token to derive one ` +
        `from (expected [<ns>.]dlq.<stream>.<consumer>)`,
    };
  }
  const prefix = tokens.slice(0, i);
  return {
    name: [...prefix.map((t) => t.toUpperCase()), 'DLQ'].join('_'),
    subjects: [[...prefix, 'dlq', '>'].join('.')],
    storage: 'file',
    retention: 'limits',
    maxAge: DLQ_MAX_AGE,
    discard: 'old',
  };
}

function notFound(err: unknown): boolean {
  // nats.js throws StreamNotFoundError ("no stream matches subject") when no stream captures it.
  if (err instanceof JetStreamApiError) return err.code === JetStreamApiCodes.StreamNotFound;
  return (err as { name?: string } | null)?.name === 'StreamNotFoundError';
}

/**
 * The stream that captures `subject`, undefined when JetStream says none does. Any other lookup
 * error is thrown: a JetStream that is briefly away must never lead to a second, smaller stream.
 */
export async function streamCapturing(jsm: JetStreamManager, subject: string): Promise<string | undefined> {
  try {
    return await jsm.streams.find(subject);
  } catch (err) {
    if (notFound(err)) return undefined;
    throw err;
  }
}

/**
 * Makes sure some stream captures `subject`. An existing stream that already captures it is left
 * alone (whatever its name); otherwise the derived DLQ stream is created.
 */
export async function ensureDeadLetterStream(jsm: JetStreamManager, subject: string): Promise<ApplyResult> {
  const existing = await streamCapturing(jsm, subject);
  if (existing) {
    return { kind: 'Stream', key: existing, action: 'noop', outcome: 'unchanged', reasons: [], stream: await jsm.streams.info(existing) };
  }
  const spec = deadLetterStreamSpec(subject);
  if ('error' in spec) return { kind: 'Stream', key: subject, action: 'refuse', outcome: 'refused', reasons: [spec.error] };
  return reconcileStream(jsm, spec);
}
