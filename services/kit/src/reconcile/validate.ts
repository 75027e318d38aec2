/**
 * Spec validation shared by the planner, the CLI and the operator. The CRD's schema and CEL rules
 * catch most of this at admission time, but `streams apply` (no Kubernetes) and dev start-up
 * bypass admission, so the same rules are checked here before JetStream is touched. Given the
 * connected server's version, fields that server does not know are refused too, naming the
 * version they need.
 */
import { durationNanos } from './duration.js';
import { unsupportedConsumerFields, unsupportedStreamFields } from './server-support.js';
import { atLeast, showVersion, type Version } from './server-version.js';
import { NEWEST } from './field-rule.js';
import type { ConsumerSpec, StreamSourceSpec, StreamSpec, SubjectTransformSpec } from './spec.js';

/** One problem with a spec, addressed by its field path in the custom resource. */
export interface SpecError {
  path: string;
  message: string;
}

// JetStream names become API subject tokens: no dots, wildcards or whitespace.
const NAME = /^[A-Za-z0-9_-]{1,255}$/;
const TOKEN = /^[^\s.*>]+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const PRIORITY_GROUP = /^[A-Za-z0-9_-]{1,16}$/;
const SAMPLE_FREQ = /^(100|[1-9]?[0-9])%?$/;
const MAX_INT32 = 2 ** 31 - 1;

export function isValidSubject(subject: string, allowWildcards = true): boolean {
  if (!subject) return false;
  const tokens = subject.split('.');
  return tokens.every((t, i) => {
    if (t === '*') return allowWildcards;
    if (t === '>') return allowWildcards && i === tokens.length - 1;
    return TOKEN.test(t);
  });
}

/** A subject mapping destination: tokens may be `{{wildcard(1)}}`-style functions. */
export function isValidDestination(dest: string): boolean {
  return isValidSubject(dest.replace(/\{\{[^}]*\}\}/g, 'x'));
}

/** Collects a spec's problems by path; the KeyValue and ObjectStore validation uses it too. */
export class Checker {
  readonly errors: SpecError[] = [];

  add(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  oneOf<T extends string>(path: string, v: T | undefined, allowed: readonly T[]): void {
    if (v !== undefined && !allowed.includes(v)) this.add(path, `must be one of ${allowed.map((a) => a || '""').join(', ')} (got "${v}")`);
  }

  int(path: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < min || v > max) {
      this.add(path, `must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}..${max}`} (got ${String(v)})`);
    }
  }

  duration(path: string, v: string | undefined): number | undefined {
    if (v === undefined) return undefined;
    try {
      return durationNanos(v);
    } catch (err) {
      this.add(path, (err as Error).message);
      return undefined;
    }
  }

  time(path: string, v: string | undefined): void {
    if (v !== undefined && (typeof v !== 'string' || !RFC3339.test(v) || Number.isNaN(Date.parse(v)))) {
      this.add(path, `must be an RFC 3339 time such as 2025-01-31T12:00:00Z (got "${String(v)}")`);
    }
  }

  subject(path: string, v: string | undefined, allowWildcards = true): void {
    if (v !== undefined && (typeof v !== 'string' || !isValidSubject(v, allowWildcards))) {
      this.add(path, `"${String(v)}" is not a valid subject${allowWildcards ? '' : ' (no wildcards)'}`);
    }
  }

  name(path: string, v: unknown): void {
    if (typeof v !== 'string' || !NAME.test(v)) this.add(path, `must match ${NAME.source} (got "${String(v)}")`);
  }

  metadata(path: string, m: Record<string, string> | undefined): void {
    for (const [k, v] of Object.entries(m ?? {})) {
      if (k.startsWith('_nats')) this.add(`${path}.${k}`, 'keys starting with _nats belong to the server');
      if (typeof v !== 'string') this.add(`${path}.${k}`, 'must be a string');
    }
  }

  transform(path: string, t: SubjectTransformSpec | undefined): void {
    if (t === undefined) return;
    this.subject(`${path}.source`, t.source);
    if (typeof t.dest !== 'string' || !isValidDestination(t.dest))
      this.add(`${path}.dest`, `"${String(t.dest)}" is not a valid subject mapping destination`);
  }

  source(path: string, s: StreamSourceSpec): void {
    this.name(`${path}.name`, s.name);
    this.int(`${path}.optStartSeq`, s.optStartSeq, 0);
    this.time(`${path}.optStartTime`, s.optStartTime);
    this.subject(`${path}.filterSubject`, s.filterSubject);
    if (s.externalDeliverPrefix && !s.externalApiPrefix) this.add(`${path}.externalDeliverPrefix`, 'needs externalApiPrefix');
    (s.subjectTransforms ?? []).forEach((t, i) => this.transform(`${path}.subjectTransforms[${i}]`, t));
  }
}

export function validateStreamSpec(spec: StreamSpec, server?: Version): SpecError[] {
  const c = new Checker();
  c.name('spec.name', spec.name);
  const subjects = spec.subjects ?? [];
  if (!Array.isArray(subjects)) {
    c.add('spec.subjects', 'must be a list of subjects');
  } else {
    if (spec.mirror && subjects.length > 0) c.add('spec.subjects', 'must be empty for a mirror (it takes the origin stream’s subjects)');
    if (!spec.mirror && !spec.sources?.length && subjects.length === 0) c.add('spec.subjects', 'must list at least one subject');
    subjects.forEach((s, i) => c.subject(`spec.subjects[${i}]`, s));
    if (new Set(subjects).size !== subjects.length) c.add('spec.subjects', 'has duplicates');
  }
  c.oneOf('spec.storage', spec.storage, ['file', 'memory']);
  c.oneOf('spec.retention', spec.retention, ['limits', 'interest', 'workqueue']);
  c.oneOf('spec.discard', spec.discard, ['old', 'new']);
  c.oneOf('spec.compression', spec.compression, ['s2', 'none', '']);
  c.oneOf('spec.persistMode', spec.persistMode, ['default', 'async', '']);
  c.int('spec.replicas', spec.replicas, 1, 5);
  c.int('spec.maxConsumers', spec.maxConsumers, -1);
  c.int('spec.maxMsgs', spec.maxMsgs, -1);
  c.int('spec.maxBytes', spec.maxBytes, -1);
  c.int('spec.maxMsgsPerSubject', spec.maxMsgsPerSubject, -1);
  c.int('spec.maxMsgSize', spec.maxMsgSize, -1, MAX_INT32);
  c.int('spec.firstSequence', spec.firstSequence, 0);
  const age = c.duration('spec.maxAge', spec.maxAge);
  const dw = c.duration('spec.duplicateWindow', spec.duplicateWindow);
  if (dw !== undefined && age !== undefined && age > 0 && dw > age) {
    c.add('spec.duplicateWindow', `may not exceed maxAge (${spec.duplicateWindow} > ${spec.maxAge})`);
  }
  const sdm = c.duration('spec.subjectDeleteMarkerTtl', spec.subjectDeleteMarkerTtl);
  if (sdm !== undefined && sdm > 0 && sdm < 1e9) c.add('spec.subjectDeleteMarkerTtl', 'must be at least 1s (the server refuses less)');
  if (spec.discardPerSubject && (spec.discard !== 'new' || !(spec.maxMsgsPerSubject! > 0))) {
    c.add('spec.discardPerSubject', 'needs discard: new and maxMsgsPerSubject > 0');
  }
  if (spec.mirrorDirect && !spec.mirror) c.add('spec.mirrorDirect', 'needs a mirror');
  if (spec.mirror) {
    c.source('spec.mirror', spec.mirror);
    if (spec.sources?.length) c.add('spec.sources', 'a mirror has no sources');
    if (spec.subjectTransform)
      c.add('spec.subjectTransform', 'a mirror cannot transform subjects on the stream (use mirror.subjectTransforms)');
  }
  (spec.sources ?? []).forEach((s, i) => c.source(`spec.sources[${i}]`, s));
  if (spec.republish) {
    c.subject('spec.republish.source', spec.republish.source);
    if (typeof spec.republish.destination !== 'string' || !isValidDestination(spec.republish.destination)) {
      c.add('spec.republish.destination', `"${String(spec.republish.destination)}" is not a valid subject mapping destination`);
    }
  }
  c.transform('spec.subjectTransform', spec.subjectTransform);
  c.metadata('spec.metadata', spec.metadata);
  c.duration('spec.consumerLimits.inactiveThreshold', spec.consumerLimits?.inactiveThreshold);
  c.int('spec.consumerLimits.maxAckPending', spec.consumerLimits?.maxAckPending, 0);
  (spec.placement?.tags ?? []).forEach((t, i) => {
    if (typeof t !== 'string' || t === '') c.add(`spec.placement.tags[${i}]`, 'must be a non-empty string');
  });
  return server ? [...c.errors, ...unsupportedStreamFields(spec, server)] : c.errors;
}

/**
 * The server's rule for backoff against max_deliver (nats-server's consumer checks at each tag):
 * before 2.10.14 max_deliver must exceed the list's length and may not be unlimited; from 2.10.14
 * unlimited is fine; from 2.10.23 the list may be as long as max_deliver.
 */
function backoffFits(c: Checker, entries: number, maxDeliver: number, server: Version): void {
  if (entries === 0) return;
  const at = `nats-server ${showVersion(server)}`;
  if (maxDeliver === -1) {
    if (!atLeast(server, [2, 10, 14]))
      c.add('spec.backoff', `needs a maxDeliver greater than its ${entries} entries on ${at} (unlimited is allowed from 2.10.14)`);
  } else if (atLeast(server, [2, 10, 23]) ? entries > maxDeliver : entries >= maxDeliver) {
    const rule = atLeast(server, [2, 10, 23])
      ? 'it may not be longer'
      : `${at} needs maxDeliver greater than the list's length (2.10.23 allows equal)`;
    c.add('spec.backoff', `has ${entries} entries but maxDeliver is ${maxDeliver}; ${rule}`);
  }
}

const PULL_ONLY = [
  'maxWaiting',
  'maxRequestBatch',
  'maxRequestExpires',
  'maxRequestMaxBytes',
  'priorityPolicy',
  'priorityGroups',
  'pinnedTtl',
] as const;
const PUSH_ONLY = ['deliverGroup', 'flowControl', 'heartbeatInterval', 'rateLimitBps'] as const;

export function validateConsumerSpec(spec: ConsumerSpec, server?: Version): SpecError[] {
  const c = new Checker();
  c.name('spec.streamName', spec.streamName);
  c.name('spec.durableName', spec.durableName);
  c.subject('spec.filterSubject', spec.filterSubject);
  (spec.filterSubjects ?? []).forEach((s, i) => c.subject(`spec.filterSubjects[${i}]`, s));
  if (spec.filterSubject && spec.filterSubjects?.length) c.add('spec.filterSubjects', 'and filterSubject are exclusive: use one of them');
  if (spec.filterSubjects && new Set(spec.filterSubjects).size !== spec.filterSubjects.length)
    c.add('spec.filterSubjects', 'has duplicates');
  c.oneOf('spec.ackPolicy', spec.ackPolicy, ['explicit', 'all', 'none']);
  c.oneOf('spec.deliverPolicy', spec.deliverPolicy, [
    'all',
    'last',
    'new',
    'byStartSequence',
    'byStartTime',
    'lastPerSubject',
    'by_start_sequence',
    'by_start_time',
    'last_per_subject',
  ]);
  c.oneOf('spec.replayPolicy', spec.replayPolicy, ['instant', 'original']);
  c.oneOf('spec.priorityPolicy', spec.priorityPolicy, ['none', 'overflow', 'pinned_client', 'prioritized']);
  const bySeq = spec.deliverPolicy === 'byStartSequence' || spec.deliverPolicy === 'by_start_sequence';
  const byTime = spec.deliverPolicy === 'byStartTime' || spec.deliverPolicy === 'by_start_time';
  c.int('spec.optStartSeq', spec.optStartSeq, 1);
  c.time('spec.optStartTime', spec.optStartTime);
  if (spec.optStartSeq !== undefined && !bySeq) c.add('spec.optStartSeq', 'needs deliverPolicy byStartSequence');
  if (bySeq && spec.optStartSeq === undefined) c.add('spec.deliverPolicy', 'byStartSequence needs optStartSeq');
  if (spec.optStartTime !== undefined && !byTime) c.add('spec.optStartTime', 'needs deliverPolicy byStartTime');
  if (byTime && spec.optStartTime === undefined) c.add('spec.deliverPolicy', 'byStartTime needs optStartTime');
  const lastPerSubject = spec.deliverPolicy === 'lastPerSubject' || spec.deliverPolicy === 'last_per_subject';
  if (lastPerSubject && !spec.filterSubject && !spec.filterSubjects?.length)
    c.add('spec.deliverPolicy', 'lastPerSubject needs filterSubject or filterSubjects');
  c.duration('spec.ackWait', spec.ackWait);
  if (spec.maxDeliver !== undefined && spec.maxDeliver !== -1) c.int('spec.maxDeliver', spec.maxDeliver, 1);
  c.int('spec.maxAckPending', spec.maxAckPending, -1);
  if (spec.backoff !== undefined) {
    if (!Array.isArray(spec.backoff)) {
      c.add('spec.backoff', 'must be a list of durations');
    } else {
      spec.backoff.forEach((d, i) => c.duration(`spec.backoff[${i}]`, d));
      backoffFits(c, spec.backoff.length, spec.maxDeliver ?? -1, server ?? NEWEST);
      if (spec.backoff.length > 0 && spec.ackPolicy === 'none') c.add('spec.backoff', 'needs an ackPolicy other than none');
    }
  }
  if (spec.sampleFreq !== undefined && (typeof spec.sampleFreq !== 'string' || !SAMPLE_FREQ.test(spec.sampleFreq))) {
    c.add('spec.sampleFreq', `must be a percentage 0..100 such as "50" or "50%" (got "${String(spec.sampleFreq)}")`);
  }
  // Push or pull: each side has fields the server refuses on the other.
  const isPush = spec.deliverSubject !== undefined && spec.deliverSubject !== '';
  c.subject('spec.deliverSubject', spec.deliverSubject || undefined, false);
  for (const f of isPush ? PULL_ONLY : PUSH_ONLY) {
    if (spec[f] !== undefined && spec[f] !== false && !(f === 'priorityPolicy' && spec[f] === 'none')) {
      c.add(
        `spec.${f}`,
        isPush ? 'is for pull consumers only (this one has a deliverSubject)' : 'is for push consumers only (needs deliverSubject)',
      );
    }
  }
  if (spec.deliverGroup !== undefined && !TOKEN.test(spec.deliverGroup))
    c.add('spec.deliverGroup', `"${spec.deliverGroup}" is not a valid queue group name`);
  const hb = c.duration('spec.heartbeatInterval', spec.heartbeatInterval);
  if (spec.flowControl && !hb) c.add('spec.flowControl', 'needs heartbeatInterval');
  // Queue groups share deliveries: no heartbeats or flow control (the client refuses the pair too).
  if (spec.deliverGroup && (spec.flowControl || hb)) c.add('spec.deliverGroup', 'excludes flowControl and heartbeatInterval');
  c.int('spec.maxWaiting', spec.maxWaiting, 0);
  c.int('spec.rateLimitBps', spec.rateLimitBps, 0);
  c.int('spec.maxRequestBatch', spec.maxRequestBatch, 0);
  c.int('spec.maxRequestMaxBytes', spec.maxRequestMaxBytes, 0);
  c.duration('spec.maxRequestExpires', spec.maxRequestExpires);
  c.duration('spec.inactiveThreshold', spec.inactiveThreshold);
  c.int('spec.replicas', spec.replicas, 0, 5);
  c.metadata('spec.metadata', spec.metadata);
  c.time('spec.pauseUntil', spec.pauseUntil);
  const prioritised = spec.priorityPolicy !== undefined && spec.priorityPolicy !== 'none';
  if (prioritised && !spec.priorityGroups?.length)
    c.add('spec.priorityGroups', `must name at least one group for priorityPolicy ${spec.priorityPolicy}`);
  if (!prioritised && spec.priorityGroups?.length) c.add('spec.priorityGroups', 'needs a priorityPolicy other than none');
  (spec.priorityGroups ?? []).forEach((g, i) => {
    if (typeof g !== 'string' || !PRIORITY_GROUP.test(g))
      c.add(`spec.priorityGroups[${i}]`, `must match ${PRIORITY_GROUP.source} (got "${String(g)}")`);
  });
  c.duration('spec.pinnedTtl', spec.pinnedTtl);
  if (spec.pinnedTtl !== undefined && spec.priorityPolicy !== 'pinned_client')
    c.add('spec.pinnedTtl', 'needs priorityPolicy pinned_client');
  if (spec.deadLetter !== undefined) {
    if (typeof spec.deadLetter.subject !== 'string' || !isValidSubject(spec.deadLetter.subject, false)) {
      c.add('spec.deadLetter.subject', `"${String(spec.deadLetter.subject)}" must be a subject without wildcards`);
    }
    if (spec.ackPolicy === 'none') c.add('spec.deadLetter', 'needs acknowledgements: with ackPolicy none nothing is ever redelivered');
  }
  return server ? [...c.errors, ...unsupportedConsumerFields(spec, server)] : c.errors;
}
