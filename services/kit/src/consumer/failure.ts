/**
 * Why handling a message failed, in the terms the runtime acts on. Only `message` failures spend
 * the message's delivery budget; `dependency` pauses the consumer and keeps the message.
 */
import { PoisonMessageError } from '../events/envelope.js';
import { isRetryLater, unavailableDependency, type Dependency } from '../faults/classify.js';

export type Failure =
  /** The message can never be handled (bad payload, unknown version): dead-lettered now. */
  | { kind: 'poison'; error: unknown }
  /** A dependency is away: the consumer pauses and holds the message; no delivery is spent. */
  | { kind: 'dependency'; dependency: Dependency; error: unknown }
  /** The database refused this attempt (lock/statement timeout, deadlock, serialization): try again here. */
  | { kind: 'contention'; error: unknown }
  /** The handler outlived its deadline: the work was abandoned; a probe decides whose fault it is. */
  | { kind: 'deadline'; error: HandlerDeadlineError }
  /** This message made the handler fail: counts toward MaxDeliver. */
  | { kind: 'message'; error: unknown };

/** A batch (or one message) still running when its handler deadline passed. */
export class HandlerDeadlineError extends Error {
  override readonly name = 'HandlerDeadlineError';
  constructor(
    readonly deadlineMs: number,
    readonly messages: number,
  ) {
    super(
      `handler still running after its ${deadlineMs} ms deadline (${messages} ` +
        `message${messages === 1 ? '' : 's'}); work abandoned and rolled back`,
    );
  }
}

/** Thrown inside a transaction whose work was abandoned, so it can never commit. */
export class AbandonedWorkError extends Error {
  override readonly name = 'AbandonedWorkError';
  constructor() {
    super('work abandoned after its deadline: not committing');
  }
}

export function classifyFailure(err: unknown): Failure {
  if (err instanceof PoisonMessageError) return { kind: 'poison', error: err };
  if (err instanceof HandlerDeadlineError) return { kind: 'deadline', error: err };
  const dependency = unavailableDependency(err);
  if (dependency) return { kind: 'dependency', dependency, error: err };
  if (isRetryLater(err)) return { kind: 'contention', error: err };
  return { kind: 'message', error: err };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
