/**
 * Dead letters for the console, through the kit's replay module — the same code the
 * `orderflow dlq` CLI runs. Every replay / discard writes one audit log line.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import {
  discardDeadLetter,
  listDeadLetters,
  replayDeadLetter,
  showDeadLetter,
  type DeadLetterEntry,
  type DlqLocation,
  type ReplayResult,
  type Topology,
} from '@orderflow/kit';
import { traceIdOf } from './sources/timeline.js';
import type { DeadLetterGroup, DeadLetterGroups, DeadLetterView } from './web/api-types.js';

export type { DeadLetterGroup, DeadLetterView };

export interface Actor {
  /** "token" when the request carried the console token, else "anonymous". */
  auth: string;
  ip?: string;
  userAgent?: string;
}

export function toView(e: DeadLetterEntry): DeadLetterView {
  const text = new TextDecoder().decode(e.data);
  let payload = text;
  let json = false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
    payload = JSON.stringify(parsed, null, 2);
    json = true;
  } catch {
    // Not JSON (that may be why it is here): show it as text.
  }
  const pick = (k: string) => {
    const v = parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>)[k] : undefined;
    return typeof v === 'string' ? v : undefined;
  };
  return {
    seq: e.seq,
    dlqSubject: e.dlqSubject,
    reason: e.reason,
    originalSubject: e.originalSubject,
    stream: e.stream,
    consumer: e.consumer,
    streamSeq: e.streamSeq,
    deliveries: e.deliveries,
    time: e.time,
    headers: e.headers,
    payload,
    json,
    orderId: pick('orderId'),
    correlationId: e.headers['X-Correlation-ID']?.[0] ?? pick('correlationId'),
    traceId: traceIdOf(e.headers.traceparent?.[0]),
    bytes: e.data.length,
  };
}

export class DeadLetters {
  readonly loc: DlqLocation;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly topology: Topology,
    private readonly dlqStream: string,
    private readonly log: Logger,
    private readonly limit = 500,
  ) {
    this.loc = { jsm, dlqStream };
  }

  /** Per DLQ subject (every consumer's subject, empty ones too), oldest first. */
  async groups(): Promise<DeadLetterGroups> {
    const info = await this.jsm.streams.info(this.dlqStream, { subjects_filter: '>' });
    const counts = info.state.subjects ?? {};
    const entries = await listDeadLetters(this.loc, { limit: this.limit });
    const groups = new Map<string, DeadLetterGroup>();
    for (const c of this.topology.consumers) {
      if (!c.deadLetter) continue;
      groups.set(c.deadLetter.subject, {
        subject: c.deadLetter.subject,
        stream: c.streamName,
        consumer: c.durableName,
        count: counts[c.deadLetter.subject] ?? 0,
        entries: [],
      });
    }
    for (const e of entries) {
      const g = groups.get(e.dlqSubject) ?? {
        subject: e.dlqSubject,
        stream: e.stream,
        consumer: e.consumer,
        count: counts[e.dlqSubject] ?? 0,
        entries: [],
      };
      g.entries.push(toView(e));
      groups.set(e.dlqSubject, g);
    }
    return { total: info.state.messages, groups: [...groups.values()], truncated: entries.length < info.state.messages };
  }

  async show(seq: number): Promise<DeadLetterView | undefined> {
    const e = await showDeadLetter(this.loc, seq);
    return e ? toView(e) : undefined;
  }

  async replay(seq: number, actor: Actor): Promise<ReplayResult & { entry?: DeadLetterView }> {
    const entry = await this.show(seq);
    const r = entry
      ? await replayDeadLetter(this.js, this.loc, seq)
      : { seq, ok: false, error: `no dead letter with sequence ${seq} in ${this.dlqStream}` };
    this.audit('dlq.replay', actor, entry, {
      ok: r.ok,
      subject: r.subject,
      replayedSeq: r.replayedSeq,
      msgId: r.msgId,
      error: r.error,
      seq,
    });
    return { ...r, entry };
  }

  /** Replays every dead letter on one DLQ subject (or all), one at a time, like `dlq replay --all`. */
  async replayAll(actor: Actor, subject?: string): Promise<ReplayResult[]> {
    const entries = (await listDeadLetters(this.loc, { limit: this.limit })).filter((e) => !subject || e.dlqSubject === subject);
    const results: ReplayResult[] = [];
    for (const e of entries) {
      const r = await replayDeadLetter(this.js, this.loc, e.seq);
      this.audit('dlq.replay', actor, toView(e), {
        ok: r.ok,
        subject: r.subject,
        replayedSeq: r.replayedSeq,
        msgId: r.msgId,
        error: r.error,
        seq: e.seq,
        batch: subject ?? 'all',
      });
      results.push(r);
    }
    return results;
  }

  async discard(seq: number, actor: Actor): Promise<boolean> {
    const entry = await this.show(seq);
    const ok = entry ? await discardDeadLetter(this.loc, seq) : false;
    this.audit('dlq.discard', actor, entry, { ok, seq });
    return ok;
  }

  /** One JSON line per operator action: who, what, on which message, with what result. */
  private audit(action: string, actor: Actor, entry: DeadLetterView | undefined, result: Record<string, unknown>): void {
    this.log.info(
      {
        audit: true,
        action,
        actor,
        dlqStream: this.dlqStream,
        dlqSubject: entry?.dlqSubject,
        originalSubject: entry?.originalSubject,
        consumer: entry?.consumer,
        reason: entry?.reason,
        orderId: entry?.orderId,
        correlationId: entry?.correlationId,
        ...result,
      },
      `audit ${action} ${result.ok ? 'ok' : 'failed'}`,
    );
  }
}
