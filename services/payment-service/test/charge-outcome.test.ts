import { expect, test } from 'vitest';
import { TaskCancelledError } from 'cockatiel';
import { PermanentGatewayError, TransientGatewayError } from '../src/gateway/client.js';
import { chargeOutcome } from '../src/payments/charge-outcome.js';

const captured = { ok: { kind: 'captured' as const, chargeId: 'ch_1', amount: 5 } };
const declined = { ok: { kind: 'declined' as const, reason: 'amount_over_limit' } };
const conflict = { err: new PermanentGatewayError('gateway refused the charge with 409: Idempotency-Key is in use', 409) };
const timedOut = { err: new TaskCancelledError('Operation timed out after 300ms') };

test.each([
  ['a capture is a capture, whatever came before', captured, { sent: 3, clear: 1 }, { kind: 'captured', chargeId: 'ch_1' }],
  ['a decline on the only attempt is clean', declined, { sent: 1, clear: 1 }, { kind: 'declined', inDoubt: false }],
  ['a decline after an attempt that got no answer is in doubt', declined, { sent: 2, clear: 1 }, { kind: 'declined', inDoubt: true }],
  ['a 4xx on the only attempt ends like a decline', conflict, { sent: 1, clear: 1 }, { kind: 'declined', inDoubt: false }],
  [
    '409 "key in use" after a timed-out attempt is in doubt, not a decline',
    conflict,
    { sent: 2, clear: 1 },
    { kind: 'unavailable', inDoubt: true },
  ],
  ['every attempt timed out: in doubt', timedOut, { sent: 3, clear: 0 }, { kind: 'unavailable', inDoubt: true }],
  [
    '503 on every attempt (refused before any work): not in doubt',
    { err: new TransientGatewayError('gateway answered 503', 503) },
    { sent: 3, clear: 3 },
    { kind: 'unavailable', inDoubt: false },
  ],
  [
    '502 may come after the work: in doubt',
    { err: new TransientGatewayError('gateway answered 502', 502) },
    { sent: 1, clear: 0 },
    { kind: 'unavailable', inDoubt: true },
  ],
  [
    'the breaker refused without sending: not in doubt',
    { err: new Error('Execution prevented because the circuit breaker is open') },
    { sent: 0, clear: 0 },
    { kind: 'unavailable', inDoubt: false },
  ],
] as const)('%s', (_what, result, tally, expected) => {
  expect(chargeOutcome(result, tally)).toMatchObject(expected);
});

test('the detail of a doubtful outcome says why', () => {
  const o = chargeOutcome(conflict, { sent: 2, clear: 1 });
  expect(o.kind !== 'captured' && o.detail).toMatch(/409.*1 attempt\(s\) got no clear answer.*in doubt/);
});
