/** What the runtime does with a failure, decided from the error alone (pure; no broker needed). */
import { describe, expect, test } from 'vitest';
import { DependencyUnavailableError, PoisonMessageError } from '@orderflow/kit';
import { classifyFailure, HandlerDeadlineError } from '../../src/consumer/failure.js';
import { effectiveAckWait } from '../../src/consumer/leases.js';

/** Errors shaped like the ones pg and nats.js throw (code / name / message are what they carry). */
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });

describe('classifyFailure', () => {
  test.each([
    ['terminated by an administrator (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['the database is starting up (57P03)', pgError('57P03', 'the database system is starting up')],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['pg connection ended', new Error('Connection terminated unexpectedly')],
    ['pool connect timeout', new Error('timeout exceeded when trying to connect')],
    ['wrapped by a handler', new Error('reserving stock failed', { cause: pgError('57P01', 'terminating connection') })],
    [
      'pg tries every address',
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], 'all failed'),
    ],
  ])('database away: %s → pause, no delivery spent', (_, err) => {
    expect(classifyFailure(err)).toMatchObject({ kind: 'dependency', dependency: 'database' });
  });

  test('a NATS request timeout is NATS being away', () => {
    expect(classifyFailure(Object.assign(new Error('timeout'), { name: 'TimeoutError' }))).toMatchObject({
      kind: 'dependency',
      dependency: 'nats',
    });
  });

  test('code that knows says so: DependencyUnavailableError', () => {
    expect(classifyFailure(new DependencyUnavailableError('gateway', 'gateway unreachable'))).toMatchObject({
      kind: 'dependency',
      dependency: 'gateway',
    });
  });

  test.each([
    ['deadlock victim (40P01)', pgError('40P01', 'deadlock detected')],
    ['lock timeout (55P03)', pgError('55P03', 'canceling statement due to lock timeout')],
    ['serialization failure (40001)', pgError('40001', 'could not serialize access')],
    ['statement timeout (57014)', pgError('57014', 'canceling statement due to statement timeout')],
  ])('contention: %s → retried in place first', (_, err) => {
    expect(classifyFailure(err).kind).toBe('contention');
  });

  test.each([
    ['a handler bug', new TypeError("Cannot read properties of undefined (reading 'items')")],
    ['a constraint the message violates (23505)', pgError('23505', 'duplicate key value violates unique constraint')],
    ['a bad statement (42703)', pgError('42703', 'column "nope" does not exist')],
    ['a thrown string', 'boom'],
  ])('the message: %s → counts toward MaxDeliver', (_, err) => {
    expect(classifyFailure(err).kind).toBe('message');
  });

  test('poison and deadlines keep their own kinds', () => {
    expect(classifyFailure(new PoisonMessageError('invalid orders.created v1')).kind).toBe('poison');
    expect(classifyFailure(new HandlerDeadlineError(1000, 2)).kind).toBe('deadline');
  });
});

describe('effective ack wait (what heartbeats follow)', () => {
  test('with a backoff list the server times delivery n out after backoff[n-1], the last entry beyond it', () => {
    const backoff = [1000, 5000, 15000];
    expect([1, 2, 3, 4, 9].map((n) => effectiveAckWait(30_000, backoff, n))).toEqual([1000, 5000, 15000, 15000, 15000]);
  });
  test('without one, ack_wait', () => {
    expect(effectiveAckWait(30_000, [], 3)).toBe(30_000);
  });
});
