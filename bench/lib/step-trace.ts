/**
 * What happened inside one e2e step, window by window, so that a step whose latency jumps can be
 * explained rather than only reported: when the platform stopped finishing orders, and what each
 * part was doing then — the services' event-loop delay and outbox lag (their /metrics), this load
 * generator's own event-loop delay (a stalled generator sends late, which the open-loop latency
 * counts), what Postgres backends were waiting on (pg_stat_activity, sampled every 100 ms), and
 * whether a checkpoint was writing buffers or WAL piled up (pg_stat_bgwriter, pg_stat_wal).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { scrapeMetrics } from '@orderflow/kit/testing';
import { round, sleep } from './stats.js';

export const WINDOW_MS = 500;
const WAIT_SAMPLE_MS = 100;
const NONE = { buffers: 0, checkpoints: 0, wal: 0, xacts: 0 };

export interface TraceWindow {
  /** Window start, ms after the step started, and its length: each window runs from the previous sample to its own, so they tile the step. */
  atMs: number;
  spanMs: number;
  /** Orders whose final event passed in this window, and the slowest of them (scheduled → final). */
  finished: number;
  maxLatencyMs: number;
  /** Largest event-loop delay per service in the window beyond the timer's period (prom-client's histogram, reset by each scrape). */
  eventLoopMaxMs: Record<string, number>;
  loadGeneratorEventLoopMaxMs: number;
  outboxLagMaxS: number;
  /** Active Postgres backends of the platform by what they waited on, summed over the window's samples. */
  pgWaits: Record<string, number>;
  /** Buffers written by the checkpointer, and WAL written, during the window. */
  checkpointBuffers: number;
  walMb: number;
  checkpointsStarted: number;
}

export interface StepTrace {
  windows: TraceWindow[];
  /** The longest stretch in which no order finished while some were outstanding, and when. */
  longestGapMs: number;
  longestGapAtMs: number;
  /** Postgres transactions (committed or rolled back) in the database during the step: the platform's, this tracer's few and other clients'. */
  pgTransactions: number;
}

/** A window as sampled, before the step's finished orders are laid over it. */
type Sampled = Omit<TraceWindow, 'finished' | 'maxLatencyMs'>;

const PG_WAITS = `SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu') AS w, count(*)::int AS n
  FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'
    AND datname = current_database() AND query NOT LIKE '%pg_stat_activity%'
  GROUP BY 1`;
const PG_COUNTERS = `SELECT b.buffers_checkpoint::float8 AS buffers, (b.checkpoints_timed + b.checkpoints_req)::float8 AS checkpoints,
    w.wal_bytes::float8 AS wal, (d.xact_commit + d.xact_rollback)::float8 AS xacts
  FROM pg_stat_bgwriter b, pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()`;

/**
 * Starts sampling; `stop(finals)` ends it and lays the samples over the step's finished orders
 * (`[finished at, latency]`, in ms after the step's start). Services are `[name, url]`.
 */
export async function startStepTrace(
  services: ReadonlyArray<readonly [string, string]>,
  databaseUrl: string | undefined,
): Promise<{ t0: number; stop(finished: ReadonlyArray<readonly [number, number]>): Promise<StepTrace> }> {
  const t0 = performance.now();
  // 20 ms: finer would wake this process (whose CPU counts with the platform's) 100 times a second.
  const eld = monitorEventLoopDelay({ resolution: 20 });
  eld.enable();
  const db = databaseUrl ? new pg.Client({ connectionString: databaseUrl }) : undefined;
  await db?.connect();
  const samples: Sampled[] = [];
  let running = true;
  let waits: Record<string, number> = {};
  const counters = async () => {
    if (!db) return NONE;
    const r = await db.query<typeof NONE>(PG_COUNTERS);
    return r.rows[0]!;
  };
  const first = await counters().catch(() => NONE);
  let last = first;
  const loop = (async () => {
    let next = performance.now();
    let from = 0;
    while (running) {
      next += WINDOW_MS;
      // Postgres waits at a finer grain than the window: a stall of a few hundred ms is seen.
      while (running && performance.now() < next) {
        if (db) {
          const r = await db.query<{ w: string; n: number }>(PG_WAITS).catch(() => ({ rows: [] as Array<{ w: string; n: number }> }));
          for (const { w, n } of r.rows) waits[w] = (waits[w] ?? 0) + n;
        }
        await sleep(Math.max(0, Math.min(WAIT_SAMPLE_MS, next - performance.now())));
      }
      const eventLoopMaxMs: Record<string, number> = {};
      let outboxLagMaxS = 0;
      await Promise.all(
        services.map(async ([name, url]) => {
          const m = await scrapeMetrics(url).catch(() => undefined);
          if (!m) return;
          // The histogram records whole timer intervals: the fastest one is the timer's own period.
          const lag = m.total('nodejs_eventloop_lag_max_seconds') - m.total('nodejs_eventloop_lag_min_seconds');
          eventLoopMaxMs[name] = round(Math.max(0, lag) * 1000, 1);
          outboxLagMaxS = Math.max(outboxLagMaxS, m.total('orderflow_outbox_lag_seconds'));
        }),
      );
      const now = await counters().catch(() => last);
      // From the previous sample to this one: the scrapes above make a window a little longer than
      // WINDOW_MS, and a fixed length would let windows overlap or leave gaps.
      const to = performance.now() - t0;
      samples.push({
        atMs: round(from),
        spanMs: round(to - from),
        eventLoopMaxMs,
        loadGeneratorEventLoopMaxMs: round(Math.max(0, eld.max / 1e6 - 20), 1),
        outboxLagMaxS,
        pgWaits: waits,
        checkpointBuffers: now.buffers - last.buffers,
        walMb: round((now.wal - last.wal) / 2 ** 20, 2),
        checkpointsStarted: now.checkpoints - last.checkpoints,
      });
      eld.reset();
      waits = {};
      last = now;
      from = to;
    }
  })();
  return {
    t0,
    async stop(finished) {
      running = false;
      await loop;
      const end = await counters().catch(() => last);
      eld.disable();
      await db?.end().catch(() => undefined);
      const windows: TraceWindow[] = samples.map((s) => {
        const mine = finished.filter(([t]) => t >= s.atMs && t < s.atMs + s.spanMs);
        return { ...s, finished: mine.length, maxLatencyMs: round(Math.max(0, ...mine.map(([, l]) => l))) };
      });
      // A gap: consecutive finishes far apart while orders were still to come (they are sorted).
      const times = finished.map(([t]) => t).sort((a, b) => a - b);
      let longestGapMs = 0;
      let longestGapAtMs = 0;
      for (let i = 1; i < times.length; i++) {
        const gap = times[i]! - times[i - 1]!;
        if (gap > longestGapMs) [longestGapMs, longestGapAtMs] = [gap, times[i - 1]!];
      }
      return { windows, longestGapMs: round(longestGapMs), longestGapAtMs: round(longestGapAtMs), pgTransactions: end.xacts - first.xacts };
    },
  };
}

/** How long every process at once, the load generator too, must have stalled to call it the machine's pause. */
export const MACHINE_PAUSE_MS = 1_000;

/**
 * The stall every process shared around the step's longest gap — the least, over the services
 * and the load generator, of each one's worst event-loop delay there — if it reaches
 * MACHINE_PAUSE_MS, else 0. The platform's load cannot stop the bench's own process and every
 * service for a second at once (no swap; the scheduler shares two cores): that is the VM or its
 * host pausing, not a figure of the platform.
 */
export function machinePauseMs(t: StepTrace): number {
  const around = windowsAroundGap(t);
  if (!around.length) return 0;
  const worst = {
    ...maxByKey(around, (w) => w.eventLoopMaxMs),
    'load generator': Math.max(...around.map((w) => w.loadGeneratorEventLoopMaxMs)),
  };
  const shared = Math.min(...Object.values(worst));
  return shared >= MACHINE_PAUSE_MS ? shared : 0;
}

/** The trace windows that overlap the step's longest gap. */
function windowsAroundGap(t: StepTrace): TraceWindow[] {
  return t.windows.filter((w) => w.atMs + w.spanMs > t.longestGapAtMs && w.atMs < t.longestGapAtMs + t.longestGapMs);
}

/** Each key's largest value over the windows. */
function maxByKey(windows: TraceWindow[], pick: (w: TraceWindow) => Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of windows) for (const [k, v] of Object.entries(pick(w))) out[k] = Math.max(out[k] ?? 0, v);
  return out;
}

/** One line naming what the windows around a step's longest gap show. */
export function describeGap(t: StepTrace): string {
  const around = windowsAroundGap(t);
  const waits: Record<string, number> = {};
  for (const w of around) for (const [k, v] of Object.entries(w.pgWaits)) waits[k] = (waits[k] ?? 0) + v;
  const topWaits = Object.entries(waits)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const eldMax = Object.entries(maxByKey(around, (w) => w.eventLoopMaxMs))
    .map(([k, v]) => `${k.replace('-service', '')} ${v}`)
    .join(', ');
  return (
    `longest gap ${t.longestGapMs} ms at ${(t.longestGapAtMs / 1000).toFixed(1)} s: ` +
    `event loop max ms [${eldMax}; load generator ${Math.max(0, ...around.map((w) => w.loadGeneratorEventLoopMaxMs))}], ` +
    `pg waits [${topWaits || 'none'}], checkpoint buffers ${around.reduce((a, w) => a + w.checkpointBuffers, 0)}, ` +
    `WAL ${round(
      around.reduce((a, w) => a + w.walMb, 0),
      1,
    )} MB, checkpoints started ${around.reduce((a, w) => a + w.checkpointsStarted, 0)}`
  );
}
