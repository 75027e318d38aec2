/**
 * The platform as the console's routes see it: a NATS that is away, streams that are not there
 * (yet), a service that does not answer — the upstream is unavailable, which the kit's one error
 * handler answers with 503 and Retry-After, never 500.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { DependencyUnavailableError, HttpProblem, type NatsManager } from '@orderflow/kit';
import { HttpError } from '../sources/services.js';

type Connected = NonNullable<ReturnType<NatsManager['connection']>>;

/** The live NATS connection, or a 503. */
export function liveConnection(nats: NatsManager): Connected {
  const conn = nats.connection();
  if (!conn || !nats.isConnected()) throw new DependencyUnavailableError('nats', 'not connected to NATS');
  return conn;
}

function streamMissing(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false;
  if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return true;
  // A second copy of the client library would fail instanceof: its error name says the same.
  if ((err as { name?: unknown }).name === 'StreamNotFoundError') return true;
  return streamMissing((err as { cause?: unknown }).cause, depth + 1);
}

/** Runs `fn` on the platform's streams; a missing stream (topology not created yet) is a 503. */
export async function onPlatformStreams<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (streamMissing(err)) {
      const detail = `a platform stream is missing (not created yet?): ${(err as Error).message}`;
      throw new DependencyUnavailableError('nats', detail, { cause: err });
    }
    throw err;
  }
}

/**
 * Runs a call to another service's HTTP API (order-service). Unreachable, timed out, 5xx or 429:
 * it is away, 503 with Retry-After; any other refusal is the upstream failing us, 502.
 */
export async function fromService<T>(service: string, retryAfterSeconds: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = err instanceof HttpError ? err.status : undefined;
    const away = status === undefined || status >= 500 || status === 429;
    const detail = `${service} ${status === undefined ? 'did not answer' : `answered ${status}`}: ${(err as Error).message}`;
    const extra = { type: 'https://orderflow.dev/problems/dependency-unavailable', dependency: service };
    if (away) throw new HttpProblem(503, detail, extra, { 'Retry-After': String(retryAfterSeconds) });
    throw new HttpProblem(502, detail, { dependency: service });
  }
}
