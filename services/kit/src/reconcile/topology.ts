/**
 * Ensures a whole Topology (streams first, then consumers) — what services call at dev start-up
 * and what `orderflow streams apply` runs. Idempotent: a second run makes no create/update calls.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Topology } from '../topology.js';
import { reconcileConsumer, reconcileStream, type ApplyResult } from './apply.js';
import { ensureDeadLetterStream } from './dead-letter-stream.js';
import { subjectMatches } from './subjects.js';

export type ReconcileLog = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;

export async function applyTopology(
  jsm: JetStreamManager,
  topology: Pick<Topology, 'streams' | 'consumers'>,
  log?: ReconcileLog,
): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  const report = (r: ApplyResult): void => {
    results.push(r);
    if (!log) return;
    const fields = { kind: r.kind, key: r.key, action: r.action, outcome: r.outcome, reasons: r.reasons };
    if (r.outcome === 'failed' || r.outcome === 'refused') log.error(fields, `${r.kind} ${r.key} ${r.outcome}`);
    else if (r.outcome === 'unchanged') log.debug(fields, `${r.kind} ${r.key} unchanged`);
    else log.info(fields, `${r.kind} ${r.key} ${r.outcome}`);
  };
  for (const s of topology.streams) report(await reconcileStream(jsm, s));
  // A consumer's dead letters need a stream; the topology normally lists it, otherwise derive one.
  const dlqSubjects = new Set(topology.consumers.flatMap((c) => (c.deadLetter ? [c.deadLetter.subject] : [])));
  for (const subject of dlqSubjects) {
    const covered = topology.streams.some((s) => s.subjects?.some((p) => subjectMatches(p, subject)));
    if (!covered) report(await ensureDeadLetterStream(jsm, subject));
  }
  for (const c of topology.consumers) report(await reconcileConsumer(jsm, c));
  return results;
}

/** The results that need a human: refused (invalid / immutable change) or failed. */
export function problems(results: ApplyResult[]): ApplyResult[] {
  return results.filter((r) => r.outcome === 'refused' || r.outcome === 'failed');
}
