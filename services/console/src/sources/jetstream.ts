/**
 * Periodic snapshot of the platform's streams and consumers from JetStream info (read-only API:
 * streams.info, consumers.list). Keeps a short history per consumer to tell whether its pending
 * count keeps growing, and when it last moved (nats-server 2.9 reports no last_active).
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Topology } from '@orderflow/kit';
import { consumerResourceName, kubectlGet, streamResourceName } from '../resources.js';
import type { ConsumerView, StreamView, StreamsSnapshot } from '../web/api-types.js';

export type { ConsumerView, StreamView, StreamsSnapshot };

interface History {
  points: Array<{ t: number; pending: number }>;
  delivered: number;
  acked: number;
  lastActivity?: number;
}

/** Samples needed (covering GROWTH_WINDOW_MS) before a consumer can be called "growing". */
const GROWTH_SAMPLES = 4;
const HISTORY = 30;

/** Pending kept rising (non-decreasing, with a net rise) over the last GROWTH_SAMPLES samples. */
export function isGrowing(pending: number[]): boolean {
  if (pending.length < GROWTH_SAMPLES) return false;
  const w = pending.slice(-GROWTH_SAMPLES);
  for (let i = 1; i < w.length; i++) if (w[i]! < w[i - 1]!) return false;
  return w.at(-1)! > w[0]! && w.at(-1)! > 0;
}

export class JetStreamSampler {
  #snapshot: StreamsSnapshot = { streams: [] };
  readonly #history = new Map<string, History>();

  constructor(
    private readonly topology: Pick<Topology, 'streams'>,
    private readonly log: Pick<Logger, 'debug' | 'warn'>,
  ) {}

  get snapshot(): StreamsSnapshot {
    return this.#snapshot;
  }

  async sample(jsm: JetStreamManager, now = Date.now()): Promise<StreamsSnapshot> {
    const streams: StreamView[] = [];
    for (const spec of this.topology.streams) {
      const view: StreamView = {
        name: spec.name,
        subjects: spec.subjects,
        messages: 0,
        bytes: 0,
        firstSeq: 0,
        lastSeq: 0,
        subjectCount: 0,
        resource: streamResourceName(spec.name),
        kubectl: kubectlGet('streams', streamResourceName(spec.name)),
        consumers: [],
      };
      streams.push(view);
      try {
        const info = await jsm.streams.info(spec.name);
        view.subjects = info.config.subjects ?? spec.subjects;
        view.messages = info.state.messages;
        view.bytes = info.state.bytes;
        view.firstSeq = info.state.first_seq;
        view.lastSeq = info.state.last_seq;
        view.subjectCount = info.state.num_subjects ?? 0;
        if (info.state.last_seq > 0) view.lastTime = info.state.last_ts;
        const consumers = await jsm.consumers.list(spec.name).next();
        for (const c of consumers.sort((a, b) => a.name.localeCompare(b.name))) {
          const key = `${spec.name}/${c.name}`;
          const h = this.#history.get(key) ?? { points: [], delivered: c.delivered.stream_seq, acked: c.ack_floor.stream_seq };
          if (c.delivered.stream_seq !== h.delivered || c.ack_floor.stream_seq !== h.acked) h.lastActivity = now;
          h.delivered = c.delivered.stream_seq;
          h.acked = c.ack_floor.stream_seq;
          h.points.push({ t: now, pending: c.num_pending });
          if (h.points.length > HISTORY) h.points.shift();
          this.#history.set(key, h);
          // nats-server >= 2.10 sends last_active as an ISO time (the client's type says nanos).
          const la: unknown = (c.delivered as unknown as { last_active?: unknown }).last_active;
          const serverActive = typeof la === 'string' && !la.startsWith('0001') ? la : undefined;
          const pendingHistory = h.points.map((p) => p.pending);
          view.consumers.push({
            name: c.name,
            stream: spec.name,
            filterSubject: c.config.filter_subject,
            numPending: c.num_pending,
            numAckPending: c.num_ack_pending,
            numRedelivered: c.num_redelivered,
            numWaiting: c.num_waiting,
            deliveredStreamSeq: c.delivered.stream_seq,
            ackFloorStreamSeq: c.ack_floor.stream_seq,
            lastActivity: serverActive ?? (h.lastActivity ? new Date(h.lastActivity).toISOString() : undefined),
            growing: isGrowing(pendingHistory),
            pendingHistory,
            resource: consumerResourceName(spec.name, c.name),
            kubectl: kubectlGet('consumers', consumerResourceName(spec.name, c.name)),
          });
        }
      } catch (err) {
        view.error = (err as Error).message;
        this.log.debug({ err, stream: spec.name }, 'console.stream_info_failed');
      }
    }
    this.#snapshot = { sampledAt: new Date(now).toISOString(), streams };
    return this.#snapshot;
  }

  fail(err: Error): void {
    this.#snapshot = { ...this.#snapshot, error: err.message };
  }
}
