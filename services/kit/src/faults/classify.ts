/**
 * One answer to "is this failure the dependency being away, or this piece of work being bad?".
 * The consumer runtime pauses (and does not spend a message's delivery budget) on the first kind
 * and dead-letters only the second; HTTP answers 503 with Retry-After on the first and never 500.
 */

export type Dependency = 'database' | 'nats' | 'gateway';

/** Thrown (or wrapped) where code already knows a dependency is away. */
export class DependencyUnavailableError extends Error {
  override readonly name = 'DependencyUnavailableError';
  constructor(
    readonly dependency: Dependency,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// SQLSTATE classes and codes that say "the server or the connection is away", not "this statement
// is wrong": 08 connection exception, 57P01-57P03 admin shutdown / crash shutdown / cannot connect
// now, 53 insufficient resources (too many connections, disk full), 58 system errors.
const PG_AWAY_CLASSES = ['08', '53', '58'];
const PG_AWAY_CODES = new Set(['57P01', '57P02', '57P03', '57P05']);
// Node socket errors on the way to any dependency.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// pg's own texts for a connection that ended or never came (they carry no code).
const PG_AWAY_MESSAGES = [
  'Connection terminated',
  'timeout expired',
  'Client has encountered a connection error',
  'Client was closed',
  'Cannot use a pool after calling end',
  'connection timeout',
  // pg-pool: every connection busy for DB_CONNECT_TIMEOUT_MS (the database is not keeping up).
  'timeout exceeded when trying to connect',
];
// nats.js v3 error names/codes for a broker that is away rather than a request that is wrong.
const NATS_AWAY_NAMES = new Set(['TimeoutError', 'ConnectionError', 'ClosedConnectionError', 'NoRespondersError', 'RequestError']);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Which dependency a failure says is away, or undefined when the failure is about the work itself. */
export function unavailableDependency(err: unknown, seen = new Set<unknown>()): Dependency | undefined {
  if (err === null || typeof err !== 'object' || seen.has(err)) return undefined;
  seen.add(err);
  if (err instanceof DependencyUnavailableError) return err.dependency;
  const code = codeOf(err);
  const name = (err as { name?: unknown }).name;
  const message = String((err as { message?: unknown }).message ?? '');
  if (code && (PG_AWAY_CODES.has(code) || (code.length === 5 && PG_AWAY_CLASSES.includes(code.slice(0, 2))))) return 'database';
  if (typeof name === 'string' && NATS_AWAY_NAMES.has(name)) return 'nats';
  if (code && SOCKET_CODES.has(code)) return 'database';
  if (PG_AWAY_MESSAGES.some((m) => message.includes(m))) return 'database';
  // AggregateError (pg tries every address) and wrapped causes.
  for (const inner of (err as { errors?: unknown[] }).errors ?? []) {
    const d = unavailableDependency(inner, seen);
    if (d) return d;
  }
  return unavailableDependency((err as { cause?: unknown }).cause, seen);
}

// Statement timeout / cancel (57014), lock timeout (55P03), deadlock victim (40P01), serialization
// failure (40001): the database is there, but this attempt lost a race or waited too long. Trying
// the same work again shortly is the right answer, so HTTP says 503 + Retry-After rather than 500.
const PG_RETRY_LATER_CODES = new Set(['57014', '55P03', '40P01', '40001']);

/** True when the database refused this attempt for contention or our own timeouts (see above). */
export function isRetryLater(err: unknown, seen = new Set<unknown>()): boolean {
  if (err === null || typeof err !== 'object' || seen.has(err)) return false;
  seen.add(err);
  const code = codeOf(err);
  if (code && PG_RETRY_LATER_CODES.has(code)) return true;
  return isRetryLater((err as { cause?: unknown }).cause, seen);
}
