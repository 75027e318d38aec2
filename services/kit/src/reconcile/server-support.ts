/**
 * Which spec fields need which nats-server (from the NATS release notes, confirmed on 2.9.10,
 * which silently drops the JSON keys it does not know). A field set to something other than its
 * default on an older server is refused, naming the version it needs, so it is neither lost
 * silently nor "updated" on every resync.
 */
import type { SpecError } from './validate.js';
import type { ConsumerSpec, StreamSpec } from './spec.js';
import { durationNanos } from './duration.js';
import { atLeast, showVersion, type Version } from './server-version.js';

export interface Feature<S> {
  path: string;
  since: Version;
  used: (spec: S) => boolean;
}

const V2_10: Version = [2, 10, 0];
const V2_11: Version = [2, 11, 0];
const V2_12: Version = [2, 12, 0];

/** Invalid text counts as unset here: validation reports it. */
export function nanosOrZero(d: string | undefined): number {
  try {
    return d === undefined ? 0 : durationNanos(d);
  } catch {
    return 0;
  }
}

const nonEmpty = (o: object | undefined): boolean => o !== undefined && Object.keys(o).length > 0;

export const STREAM_FEATURES: readonly Feature<StreamSpec>[] = [
  { path: 'spec.subjectTransform', since: V2_10, used: (s) => s.subjectTransform !== undefined },
  { path: 'spec.mirror.subjectTransforms', since: V2_10, used: (s) => (s.mirror?.subjectTransforms?.length ?? 0) > 0 },
  {
    path: 'spec.sources[].subjectTransforms',
    since: V2_10,
    used: (s) => (s.sources ?? []).some((x) => (x.subjectTransforms?.length ?? 0) > 0),
  },
  { path: 'spec.compression', since: V2_10, used: (s) => s.compression === 's2' },
  { path: 'spec.firstSequence', since: V2_10, used: (s) => (s.firstSequence ?? 0) > 1 },
  { path: 'spec.metadata', since: V2_10, used: (s) => nonEmpty(s.metadata) },
  { path: 'spec.consumerLimits', since: V2_10, used: (s) => nonEmpty(s.consumerLimits) },
  // Retention limits ↔ interest in place also needs 2.10: the planner says so when it comes up.
  { path: 'spec.allowMsgTtl', since: V2_11, used: (s) => s.allowMsgTtl === true },
  { path: 'spec.subjectDeleteMarkerTtl', since: V2_11, used: (s) => nanosOrZero(s.subjectDeleteMarkerTtl) > 0 },
  { path: 'spec.allowAtomicPublish', since: V2_12, used: (s) => s.allowAtomicPublish === true },
  { path: 'spec.allowMsgCounter', since: V2_12, used: (s) => s.allowMsgCounter === true },
  { path: 'spec.allowMsgSchedules', since: V2_12, used: (s) => s.allowMsgSchedules === true },
  { path: 'spec.persistMode', since: V2_12, used: (s) => s.persistMode === 'async' },
];

export const CONSUMER_FEATURES: readonly Feature<ConsumerSpec>[] = [
  // One entry is sent as filter_subject, which every server knows.
  { path: 'spec.filterSubjects', since: V2_10, used: (c) => (c.filterSubjects?.length ?? 0) > 1 },
  { path: 'spec.metadata', since: V2_10, used: (c) => nonEmpty(c.metadata) },
  { path: 'spec.pauseUntil', since: V2_11, used: (c) => !!c.pauseUntil },
  {
    path: 'spec.priorityPolicy',
    since: V2_11,
    used: (c) => c.priorityPolicy !== undefined && c.priorityPolicy !== 'none' && c.priorityPolicy !== 'prioritized',
  },
  { path: 'spec.priorityPolicy', since: V2_12, used: (c) => c.priorityPolicy === 'prioritized' },
  { path: 'spec.priorityGroups', since: V2_11, used: (c) => (c.priorityGroups?.length ?? 0) > 0 },
  { path: 'spec.pinnedTtl', since: V2_11, used: (c) => c.pinnedTtl !== undefined },
];

export function check<S>(features: readonly Feature<S>[], spec: S, server: Version): SpecError[] {
  return features
    .filter((f) => f.used(spec) && !atLeast(server, f.since))
    .map((f) => ({
      path: f.path,
      message: `needs nats-server ${showVersion(f.since)} or newer (the connected server is ${showVersion(server)})`,
    }));
}

export const unsupportedStreamFields = (spec: StreamSpec, server: Version): SpecError[] => check(STREAM_FEATURES, spec, server);
export const unsupportedConsumerFields = (spec: ConsumerSpec, server: Version): SpecError[] => check(CONSUMER_FEATURES, spec, server);
