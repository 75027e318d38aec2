/**
 * Dead-letter inspection and replay: list, show, replay (one or all), discard. Used by the
 * `orderflow dlq` CLI and, later, the ops console — one implementation for both.
 *
 * Replay republishes to the original subject (or another) with a NEW msg id, waits for the
 * publish ack and only then deletes the DLQ entry: if the publish fails the entry stays put.
 */
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { H } from '../events/headers.js';

export interface DeadLetterEntry {
  /** Sequence in the DLQ stream: the handle for show / replay / discard. */
  seq: number;
  dlqSubject: string;
  reason: string;
  stream: string;
  consumer: string;
  streamSeq: number;
  deliveries: number;
  originalSubject: string;
  originalMsgId?: string;
  /** When the dead letter was written (Dlq-Time), ISO 8601. */
  time: string;
  headers: Record<string, string[]>;
  data: Uint8Array;
}

export interface DlqLocation {
  jsm: JetStreamManager;
  /** The DLQ stream, e.g. `DLQ` or `<NS>_DLQ`. */
  dlqStream: string;
}

export interface ListOptions {
  /** Only dead letters that came from this source stream (Dlq-Stream header). */
  stream?: string;
  /** Only this consumer's dead letters. */
  consumer?: string;
  limit?: number;
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (h) for (const [k, vs] of h) out[k] = [...vs];
  return out;
}

function toEntry(m: Pick<StoredMsg, 'seq' | 'subject' | 'header' | 'data' | 'time'>): DeadLetterEntry {
  const get = (k: string): string => m.header?.get(k) ?? '';
  return {
    seq: m.seq,
    dlqSubject: m.subject,
    reason: get(H.dlqReason),
    stream: get(H.dlqStream),
    consumer: get(H.dlqConsumer),
    streamSeq: Number(get(H.dlqStreamSeq)) || 0,
    deliveries: Number(get(H.dlqDeliveries)) || 0,
    originalSubject: get(H.dlqSubject),
    originalMsgId: m.header?.get('Dlq-Original-Msg-Id') || undefined,
    time: get(H.dlqTime) || m.time.toISOString(),
    headers: headerRecord(m.header),
    data: m.data,
  };
}

/** One dead letter by DLQ sequence; undefined if there is none. */
export async function showDeadLetter(loc: DlqLocation, seq: number): Promise<DeadLetterEntry | undefined> {
  const m = await loc.jsm.streams.getMessage(loc.dlqStream, { seq });
  return m ? toEntry(m) : undefined;
}

/**
 * Dead letters in DLQ order. Reads by sequence between the stream's first and last sequence:
 * a DLQ is small (a human clears it), and this creates no consumer on the stream.
 */
export async function listDeadLetters(loc: DlqLocation, opts: ListOptions = {}): Promise<DeadLetterEntry[]> {
  const { state } = await loc.jsm.streams.info(loc.dlqStream);
  const out: DeadLetterEntry[] = [];
  if (state.messages === 0) return out;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  for (let seq = state.first_seq; seq <= state.last_seq && out.length < limit; seq++) {
    const e = await showDeadLetter(loc, seq);
    if (!e) continue; // deleted (replayed or discarded) entries leave gaps
    if (opts.stream && e.stream !== opts.stream) continue;
    if (opts.consumer && e.consumer !== opts.consumer) continue;
    out.push(e);
  }
  return out;
}

export interface ReplayOptions {
  /** Republish here instead of the original subject. */
  to?: string;
}

export interface ReplayResult {
  seq: number;
  ok: boolean;
  subject?: string;
  /** Sequence of the republished message in its stream. */
  replayedSeq?: number;
  msgId?: string;
  error?: string;
}

/** Headers for the replayed message: the original ones, without the Dlq-* bookkeeping and old id. */
function replayHeaders(e: DeadLetterEntry): MsgHdrs {
  const h = natsHeaders();
  for (const [k, vs] of Object.entries(e.headers)) {
    if (k === H.msgId || k.toLowerCase().startsWith('dlq-')) continue;
    for (const v of vs) h.append(k, v);
  }
  if (e.originalMsgId) h.set('Replay-Of-Msg-Id', e.originalMsgId);
  return h;
}

/**
 * Replays one dead letter. The new msg id is derived from the DLQ entry (`replay:<dlq>:<seq>`),
 * so it differs from the original (which the stream may still de-duplicate) while a retried
 * replay of the same entry within the duplicate window is not published twice.
 */
export async function replayDeadLetter(
  js: JetStreamClient,
  loc: DlqLocation,
  seq: number,
  opts: ReplayOptions = {},
): Promise<ReplayResult> {
  const e = await showDeadLetter(loc, seq);
  if (!e) return { seq, ok: false, error: `no dead letter with sequence ${seq} in ${loc.dlqStream}` };
  const subject = opts.to ?? e.originalSubject;
  if (!subject) return { seq, ok: false, error: `dead letter ${seq} has no ${H.dlqSubject} header; use --to` };
  const msgId = `replay:${loc.dlqStream}:${seq}`;
  let replayedSeq: number;
  try {
    const ack = await js.publish(subject, e.data, { msgID: msgId, headers: replayHeaders(e) });
    replayedSeq = ack.seq;
  } catch (err) {
    // Nothing deleted: the dead letter stays for another try.
    return { seq, ok: false, subject, msgId, error: (err as Error).message };
  }
  try {
    await loc.jsm.streams.deleteMessage(loc.dlqStream, seq, false);
  } catch (err) {
    return {
      seq,
      ok: false,
      subject,
      msgId,
      replayedSeq,
      error: `replayed but not removed from ${loc.dlqStream}: ${(err as Error).message}`,
    };
  }
  return { seq, ok: true, subject, msgId, replayedSeq };
}

/** Replays every dead letter matching the filter, one after the other; stops at nothing. */
export async function replayAllDeadLetters(
  js: JetStreamClient,
  loc: DlqLocation,
  filter: ListOptions = {},
  opts: ReplayOptions = {},
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for (const e of await listDeadLetters(loc, filter)) results.push(await replayDeadLetter(js, loc, e.seq, opts));
  return results;
}

/** Drops a dead letter for good; false if there was none. */
export async function discardDeadLetter(loc: DlqLocation, seq: number): Promise<boolean> {
  const e = await loc.jsm.streams.getMessage(loc.dlqStream, { seq });
  if (!e) return false;
  return loc.jsm.streams.deleteMessage(loc.dlqStream, seq, false);
}
