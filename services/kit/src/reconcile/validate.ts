/**
 * Spec validation shared by the planner, the CLI and the operator. The CRD's OpenAPI schema
 * catches most of this at admission time, but `streams apply` (no Kubernetes) and dev start-up
 * bypass admission, so the same rules are checked here before JetStream is touched.
 */
import { parseDuration, type ConsumerSpec, type StreamSpec } from '../topology.js';

/** One problem with a spec, addressed by its field path in the custom resource. */
export interface SpecError {
  path: string;
  message: string;
}

// JetStream names become API subject tokens: no dots, wildcards or whitespace.
const NAME = /^[A-Za-z0-9_-]{1,255}$/;
const TOKEN = /^[^\s.*>]+$/;

export function isValidSubject(subject: string, allowWildcards = true): boolean {
  if (!subject) return false;
  const tokens = subject.split('.');
  return tokens.every((t, i) => {
    if (t === '*') return allowWildcards;
    if (t === '>') return allowWildcards && i === tokens.length - 1;
    return TOKEN.test(t);
  });
}

function oneOf<T extends string>(errors: SpecError[], path: string, v: T | undefined, allowed: readonly T[]): void {
  if (v !== undefined && !allowed.includes(v)) errors.push({ path, message: `must be one of ${allowed.join(', ')} (got "${v}")` });
}

function int(errors: SpecError[], path: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min || v > max) {
    errors.push({ path, message: `must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}..${max}`} (got ${String(v)})` });
  }
}

function duration(errors: SpecError[], path: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    return parseDuration(v);
  } catch (err) {
    errors.push({ path, message: (err as Error).message });
    return undefined;
  }
}

export function validateStreamSpec(spec: StreamSpec): SpecError[] {
  const errors: SpecError[] = [];
  if (typeof spec.name !== 'string' || !NAME.test(spec.name)) {
    errors.push({ path: 'spec.name', message: `must match ${NAME.source} (got "${String(spec.name)}")` });
  }
  if (!Array.isArray(spec.subjects) || spec.subjects.length === 0) {
    errors.push({ path: 'spec.subjects', message: 'must list at least one subject' });
  } else {
    spec.subjects.forEach((s, i) => {
      if (typeof s !== 'string' || !isValidSubject(s)) errors.push({ path: `spec.subjects[${i}]`, message: `"${String(s)}" is not a valid subject` });
    });
    if (new Set(spec.subjects).size !== spec.subjects.length) errors.push({ path: 'spec.subjects', message: 'has duplicates' });
  }
  oneOf(errors, 'spec.storage', spec.storage, ['file', 'memory']);
  oneOf(errors, 'spec.retention', spec.retention, ['limits', 'interest', 'workqueue']);
  oneOf(errors, 'spec.discard', spec.discard, ['old', 'new']);
  int(errors, 'spec.replicas', spec.replicas, 1, 5);
  int(errors, 'spec.maxBytes', spec.maxBytes, -1);
  int(errors, 'spec.maxMsgs', spec.maxMsgs, -1);
  duration(errors, 'spec.maxAge', spec.maxAge);
  const dw = duration(errors, 'spec.duplicateWindow', spec.duplicateWindow);
  const age = spec.maxAge === undefined ? undefined : duration([], 'spec.maxAge', spec.maxAge);
  if (dw !== undefined && age !== undefined && age > 0 && dw > age) {
    errors.push({ path: 'spec.duplicateWindow', message: `may not exceed maxAge (${spec.duplicateWindow} > ${spec.maxAge})` });
  }
  return errors;
}

export function validateConsumerSpec(spec: ConsumerSpec): SpecError[] {
  const errors: SpecError[] = [];
  if (typeof spec.streamName !== 'string' || !NAME.test(spec.streamName)) {
    errors.push({ path: 'spec.streamName', message: `must match ${NAME.source} (got "${String(spec.streamName)}")` });
  }
  if (typeof spec.durableName !== 'string' || !NAME.test(spec.durableName)) {
    errors.push({ path: 'spec.durableName', message: `must match ${NAME.source} (got "${String(spec.durableName)}")` });
  }
  if (spec.filterSubject !== undefined && !isValidSubject(spec.filterSubject)) {
    errors.push({ path: 'spec.filterSubject', message: `"${spec.filterSubject}" is not a valid subject` });
  }
  oneOf(errors, 'spec.ackPolicy', spec.ackPolicy, ['explicit', 'all', 'none']);
  duration(errors, 'spec.ackWait', spec.ackWait);
  if (spec.maxDeliver !== undefined && spec.maxDeliver !== -1) int(errors, 'spec.maxDeliver', spec.maxDeliver, 1);
  int(errors, 'spec.maxAckPending', spec.maxAckPending, -1);
  if (spec.backoff !== undefined) {
    if (!Array.isArray(spec.backoff)) {
      errors.push({ path: 'spec.backoff', message: 'must be a list of durations' });
    } else {
      spec.backoff.forEach((d, i) => duration(errors, `spec.backoff[${i}]`, d));
      // The server rejects a backoff list longer than max_deliver (shared/README.md).
      const md = spec.maxDeliver ?? -1;
      if (md > 0 && spec.backoff.length > md) {
        errors.push({ path: 'spec.backoff', message: `has ${spec.backoff.length} entries but maxDeliver is ${md}; it may not be longer` });
      }
      if (spec.backoff.length > 0 && spec.ackPolicy === 'none') {
        errors.push({ path: 'spec.backoff', message: 'needs an ackPolicy other than none' });
      }
    }
  }
  if (spec.deadLetter !== undefined) {
    if (typeof spec.deadLetter.subject !== 'string' || !isValidSubject(spec.deadLetter.subject, false)) {
      errors.push({ path: 'spec.deadLetter.subject', message: `"${String(spec.deadLetter.subject)}" must be a subject without wildcards` });
    }
    if (spec.ackPolicy === 'none') {
      errors.push({ path: 'spec.deadLetter', message: 'needs acknowledgements: with ackPolicy none nothing is ever redelivered' });
    }
  }
  return errors;
}
