// The kit's public contract, named one by one (as nats.js's mod.ts): what a service, the console,
// the operator or a test may use. Anything not listed here is the kit's own business.

// A service: its definition, its context, start-up and shutdown.
export {
  defineService,
  type ConsumerDeclaration,
  type ConsumerDeclarations,
  type HandlerMap,
  type HttpEnv,
  type Lifecycle,
  type ServiceContext,
  type ServiceDefinition,
  type StreamBase,
} from './definition.js';
export { runMain, startService, type RunningService, type StartOptions } from './service.js';
export { exitOnSignals } from './shutdown-hooks.js';

// The handler contract and the consumer that runs it.
export type { Handler, HandlerContext, Handlers, VersionedHandler } from './consumer/contract.js';
export { EventConsumer, type EventConsumerOptions } from './consumer/runtime.js';

// Settings, logs, metrics, traces.
export { baseConfig, intSetting, readSetting, type BaseConfig } from './config.js';
export { createLogger, type Logger } from './log.js';
export { collectProcessMetrics, createMetrics, type Metrics } from './metrics.js';
export { inSpan, injectTraceHeaders } from './tracing/propagation.js';
export { observeWithTraceId } from './tracing/exemplars.js';
export { parsePrometheus, labelsMatch, sumBy, type Sample } from './prometheus-text.js';

// Topology: names, the platform's streams, and the consumers the service definitions declare.
export { Names, parseDuration, topologyOf, type ConsumerSpec, type StreamSpec, type Topology, type TopologyOptions } from './topology.js';

// Events: schemas, envelope, headers, versions.
export {
  Currency,
  EVENT_SCHEMAS,
  OrderItem,
  OrdersCreatedV1,
  type EventData,
  type EventType,
  type EventVersion,
} from './events/schemas.js';
export {
  decodeEvent,
  formatIssues,
  makeEvent,
  makeEventVersions,
  PoisonMessageError,
  publishVersionsSetting,
  type IncomingEvent,
  type OutgoingEvent,
} from './events/envelope.js';
export { H } from './events/headers.js';
export { adaptToVersion, upcast, upcastPath } from './events/upcast.js';

// NATS and the database.
export { NatsManager, type Connected, type NatsSettings } from './nats/connection.js';
export { natsAccessFromEnv, natsConnectionOptions, type NatsAccess } from './nats/settings.js';
export type { Db, FirstStatement, Row, Sql, TxSql } from './db/db.js';
export { openPglite } from './db/pglite.js';
export { openPostgres } from './db/postgres.js';
export { migrate, type Migration } from './db/migrate.js';
export { GroupCommit, type GroupCommitOptions, type Settled } from './db/group-commit.js';
export { txState } from './db/tx-state.js';

// Outbox.
export { enqueue, OUTBOX_MIGRATIONS, outboxInsertSql, outboxParams } from './outbox/store.js';
export { OutboxRelay, type OutboxRelayOptions } from './outbox/relay.js';

// Faults and retries.
export { DependencyUnavailableError, unavailableDependency, type Dependency } from './faults/classify.js';
export { RetryDelays, type BackoffSettings } from './faults/backoff.js';
export { periodic, type PeriodicOptions } from './sweep/periodic.js';
export { recheckDelay } from './sweep/recheck-delay.js';
export { claimWindow, type ClaimWindow } from './sweep/claim-window.js';
export {
  orderOutcomeSweep,
  type FinalOrderOutcome,
  type OrderOutcomeSweepOptions,
  type UnsettledOrder,
} from './sweep/order-outcome-sweep.js';

// HTTP.
export { HttpProblem, problem, type Problem } from './http/problem.js';
export { errorHandler } from './http/errors.js';
export { opsApp, type OpsOptions, type ReadinessCheck } from './http/ops.js';
export { serveHttp, type Fetchable, type HttpServing } from './http/serve.js';
export { acceptsOpenMetrics, exposition, openMetricsRegistry, openMetricsToText } from './http/metrics-exposition.js';
export { correlation } from './http/correlation.js';
export { jsonBodyLimit, readJsonBody } from './http/json-body.js';
export { rateLimit, rateLimitFromEnv, type RateLimitOptions } from './http/rate-limit.js';
export { clientAddress, TrustedProxies, trustedProxiesFromEnv } from './http/client-address.js';

// Clients of other services.
export { httpOrderOutcomes, OrderServiceUnavailableError, type OrderOutcome, type OrderOutcomes } from './clients/order-outcome.js';
export type { OrderStats } from './clients/order-stats.js';

// Dead letters.
export { publishDeadLetter } from './dlq/dead-letter.js';
export { createAdvisoryCopier, deadLetterLookup, type AdvisoryCopier } from './dlq/advisory-copier.js';
export {
  advisoryKind,
  copyAdvisoryToDeadLetter,
  MAX_DELIVERIES_ADVISORY,
  MSG_TERMINATED_ADVISORY,
  type AdvisoryCopy,
  type AdvisoryCopyCounts,
  type AdvisoryKind,
  type ConsumerAdvisory,
  type DeadLetterLookup,
} from './dlq/advisory-copy.js';
export {
  discardDeadLetter,
  listDeadLetters,
  replayAllDeadLetters,
  replayDeadLetter,
  showDeadLetter,
  type DeadLetterEntry,
  type DlqLocation,
  type ReplayResult,
} from './dlq/replay.js';

// Reconcile core (spec → JetStream config → plan → apply), used by the operator and its CLI; its
// tests reach the rest of it through reconcile/index.ts.
export {
  applyConsumerPlan,
  applyStreamPlan,
  applyTopology,
  atLeast,
  connectedAtLeast,
  connectedServerVersion,
  deadLetterStreamSpec,
  streamCapturing,
  deleteConsumer,
  deleteStream,
  ensureDeadLetterStream,
  parseVersion,
  planConsumer,
  planStream,
  problems,
  readConsumer,
  readStream,
  reconcileConsumer,
  reconcileStream,
  serverOf,
  subjectMatches,
  type ApplyResult,
  type ConsumerPlan,
  type Plan,
  type PlanContext,
  type StreamPlan,
} from './reconcile/index.js';
// KeyValue and ObjectStore buckets (streams in the layout the NATS clients give them).
export {
  applyBucketPlan,
  bucketStreamName,
  deleteBucket,
  planKeyValue,
  planObjectStore,
  readBucket,
  reconcileKeyValue,
  reconcileObjectStore,
  type BucketKind,
  type BucketPlan,
  type KeyValueSpec,
  type ObjectStoreSpec,
} from './reconcile/index.js';
