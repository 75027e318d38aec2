/**
 * `orderflow streams status`: what JetStream holds, with live numbers. A KeyValue or ObjectStore
 * bucket is a stream underneath (`KV_<bucket>`, `OBJ_<bucket>`: bucket-config.ts of the kit), but
 * it is declared and thought of as a bucket, so it is shown as one — its kind and bucket name, in a
 * section after the streams — not as the stream the client library lays it out in.
 */
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';

export type BucketKind = 'KeyValue' | 'ObjectStore';

/** The bucket a stream holds, told by its name and the subjects the client library gives it; undefined for a plain stream. */
export function bucketOf(s: StreamInfo): { kind: BucketKind; bucket: string } | undefined {
  const { name, subjects = [] } = s.config;
  if (name.startsWith('KV_')) {
    const bucket = name.slice(3);
    if (subjects.includes(`$KV.${bucket}.>`)) return { kind: 'KeyValue', bucket };
  }
  if (name.startsWith('OBJ_')) {
    const bucket = name.slice(4);
    if (subjects.includes(`$O.${bucket}.M.>`)) return { kind: 'ObjectStore', bucket };
  }
  return undefined;
}

const seconds = (ns: number): string => (ns > 0 ? `${ns / 1e9}s` : 'none');

/** The status report, a line each: streams with their consumers, then the buckets. */
export async function statusLines(jsm: JetStreamManager): Promise<string[]> {
  const streams: string[] = [];
  const buckets: string[] = [];
  for await (const s of jsm.streams.list()) {
    const b = bucketOf(s);
    if (b?.kind === 'KeyValue') {
      // values: every revision kept (history), delete markers included, as `nats kv status` counts them.
      buckets.push(
        `KeyValue     ${b.bucket}  values=${s.state.messages}  history=${s.config.max_msgs_per_subject}  bytes=${s.state.bytes}  ` +
          `ttl=${seconds(s.config.max_age)}`,
      );
      continue;
    }
    if (b?.kind === 'ObjectStore') {
      buckets.push(
        `ObjectStore  ${b.bucket}  bytes=${s.state.bytes}  messages=${s.state.messages}  ttl=${seconds(s.config.max_age)}  ` +
          `sealed=${s.config.sealed}`,
      );
      continue;
    }
    streams.push(
      `${s.config.name}  subjects=${(s.config.subjects ?? []).join(',')}  messages=${s.state.messages}  bytes=${s.state.bytes}  ` +
        `consumers=${s.state.consumer_count}`,
    );
    for await (const c of jsm.consumers.list(s.config.name))
      streams.push(
        `  ${c.name}  pending=${c.num_pending}  ackPending=${c.num_ack_pending}  redelivered=${c.num_redelivered}  ` +
          `maxDeliver=${c.config.max_deliver}`,
      );
  }
  return buckets.length ? [...streams, 'buckets:', ...buckets] : streams;
}
