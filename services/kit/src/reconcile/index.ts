// Reconcile core (spec → JetStream config → plan → apply), independent of Kubernetes. A named list,
// as the kit's own entry: what the operator, the CLI and the services may use.
export { isValidSubject, validateConsumerSpec, validateStreamSpec, type SpecError } from './validate.js';
export { deliverPolicyOf, toConsumerConfig, toStreamConfig, type DesiredConsumerConfig, type DesiredStreamConfig } from './config.js';
export { GO_DURATION_PATTERN, durationNanos, formatNanos } from './duration.js';
export { atLeast, connectedAtLeast, connectedServerVersion, parseVersion, showVersion, type Version } from './server-version.js';
export { CONSUMER_FEATURES, STREAM_FEATURES, unsupportedConsumerFields, unsupportedStreamFields } from './server-support.js';
export { NEWEST, type ChangeCheck, type FieldChange, type FieldRule } from './field-rule.js';
export { DEFAULT_DUPLICATE_WINDOW, STREAM_FIELDS, defaultDuplicateWindow, type StreamFieldRule } from './stream-fields.js';
export {
  CONSUMER_FIELDS,
  DEFAULT_ACK_WAIT,
  DEFAULT_MAX_ACK_PENDING,
  DEFAULT_MAX_WAITING,
  DEFAULT_PINNED_TTL,
  effectiveAckWait,
  type ConsumerContext,
  type ConsumerFieldRule,
} from './consumer-fields.js';
export {
  consumerContext,
  planConsumer,
  planStream,
  serverOf,
  updatable,
  type ConsumerPlan,
  type Plan,
  type PlanAction,
  type PlanContext,
  type StreamPlan,
} from './plan.js';
export {
  applyConsumerPlan,
  applyStreamPlan,
  deleteConsumer,
  deleteStream,
  readConsumer,
  readStream,
  reconcileConsumer,
  reconcileStream,
  type ApplyResult,
  type Outcome,
  type ReconcileOptions,
} from './apply.js';
export { subjectMatches } from './subjects.js';
export { deadLetterStreamSpec, ensureDeadLetterStream, streamCapturing } from './dead-letter-stream.js';
export { applyTopology, problems, type ReconcileLog } from './topology.js';
export type { KeyValueSpec, ObjectStoreSpec, BucketPlacementSpec } from './bucket-spec.js';
export { KEYVALUE_FIELDS, OBJECTSTORE_FIELDS, type BucketFieldRule } from './bucket-fields.js';
export {
  KEYVALUE_FEATURES,
  MAX_HISTORY,
  OBJECTSTORE_FEATURES,
  keyValueStreamName,
  objectStoreStreamName,
  toKeyValueStreamConfig,
  toObjectStoreStreamConfig,
  validateKeyValueSpec,
  validateObjectStoreSpec,
} from './bucket-config.js';
export { bucketFields, planKeyValue, planObjectStore, type BucketKind, type BucketPlan } from './bucket-plan.js';
export { applyBucketPlan, bucketStreamName, deleteBucket, readBucket, reconcileKeyValue, reconcileObjectStore } from './bucket-apply.js';
