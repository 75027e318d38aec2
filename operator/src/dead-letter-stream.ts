/**
 * A Consumer with `deadLetter` needs a stream that captures its DLQ subject. Three cases:
 *  - a stream captures it already: nothing to do (whatever its name, replicas or owner);
 *  - a Stream resource declares that stream but it is not there yet: wait for that resource (a
 *    consumer never creates a stream a resource owns, with settings of its own);
 *  - nobody declares one: create the derived stream (`<NS>_DLQ` on `<ns>.dlq.>`, the kit's naming)
 *    with the source stream's replicas (file storage: dead letters are kept a month), marked as the
 *    operator's so a Stream resource declaring it later may take it over. A stream of that name
 *    that does not capture the subject is someone else's: reported, never changed.
 * "Not there" means JetStream said so (stream not found); any other lookup error is thrown, so a
 * JetStream that is briefly away never leads to a second, smaller DLQ stream.
 */
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import {
  connectedAtLeast,
  deadLetterStreamSpec,
  readStream,
  reconcileStream,
  streamCapturing,
  subjectMatches,
  type StreamSpec,
} from '@orderflow/kit';
import { OPERATOR_MARKER, withMarker } from './ownership.js';

export type DeadLetterStreamResult =
  { ok: true; stream: string; created: boolean } | { ok: false; reason: string; message: string; retry: boolean };

export interface DeadLetterStreamInput {
  subject: string;
  /** The consumer's own stream, whose replicas the derived DLQ stream takes. */
  source: StreamInfo;
  /** Stream specs declared by Stream resources (the informer cache). */
  declared: readonly StreamSpec[];
}

export async function ensureDeadLetterStream(jsm: JetStreamManager, input: DeadLetterStreamInput): Promise<DeadLetterStreamResult> {
  const { subject } = input;
  const existing = await streamCapturing(jsm, subject);
  if (existing) return { ok: true, stream: existing, created: false };
  const derived = deadLetterStreamSpec(subject);
  if ('error' in derived) return { ok: false, reason: 'InvalidSpec', message: derived.error, retry: false };
  const declaring = input.declared.find((s) => s.name === derived.name || (s.subjects ?? []).some((p) => subjectMatches(p, subject)));
  if (declaring) {
    return {
      ok: false,
      reason: 'DeadLetterStreamMissing',
      message: `deadLetter.subject ${subject} goes to stream ${declaring.name}, declared by a Stream resource, which does not exist yet`,
      retry: true,
    };
  }
  if (await readStream(jsm, derived.name)) {
    return {
      ok: false,
      reason: 'DeadLetterStreamMissing',
      message: `deadLetter.subject ${subject} is captured by no stream, and stream ${derived.name} exists with other subjects`,
      retry: true,
    };
  }
  const spec: StreamSpec = { ...derived, replicas: input.source.config.num_replicas };
  const markers = connectedAtLeast(jsm, [2, 10, 0]);
  const r = await reconcileStream(jsm, markers ? withMarker(spec, OPERATOR_MARKER) : spec);
  if (r.outcome === 'created' || r.outcome === 'unchanged' || r.outcome === 'updated')
    return { ok: true, stream: spec.name, created: r.outcome === 'created' };
  return {
    ok: false,
    reason: r.outcome === 'failed' ? 'ApplyFailed' : 'InvalidSpec',
    message: `dead-letter stream ${spec.name}: ${r.reasons.join('; ') || r.error}`,
    retry: r.outcome === 'failed',
  };
}
