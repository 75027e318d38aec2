/**
 * periodic(): the round runner of the sweeps. Rounds never overlap, a failed round is logged and
 * the next one still runs (after a backoff), start() twice starts one loop, stop() waits for the
 * round in progress (its signal aborted) and may be called again; nothing starts after it.
 */
import { expect, test, vi } from 'vitest';
import { createLogger, periodic } from '@orderflow/kit';

/** A logger that records warn lines (event and fields). */
function recordingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('periodic-test', 'silent');
  log.warn = ((obj: Record<string, unknown>, msg: string) => void lines.push({ ...obj, msg })) as typeof log.warn;
  return { log, lines };
}

test('rounds follow one another, a failed round is logged and the next runs; start() twice is one loop', async () => {
  const { log, lines } = recordingLog();
  let running = 0;
  let overlapped = false;
  let rounds = 0;
  let third!: () => void;
  const thirdDone = new Promise<void>((r) => (third = r));
  const p = periodic({
    name: 'test',
    intervalMs: 5,
    log,
    failedEvent: 'test.round_failed',
    round: async () => {
      running++;
      if (running > 1) overlapped = true;
      rounds++;
      await new Promise((r) => setImmediate(r));
      running--;
      if (rounds === 1) throw new Error('first round fails');
      if (rounds === 3) third();
    },
  });
  p.start();
  p.start();
  await thirdDone;
  await p.stop();
  expect(overlapped).toBe(false);
  expect(lines).toHaveLength(1);
  // The round after a failure waits at least the interval, on the backoff (reset by a success).
  expect(lines[0]).toMatchObject({ sweep: 'test', msg: 'test.round_failed', failures: 1 });
  expect(lines[0]!.retryInMs).toBeGreaterThanOrEqual(5);
  expect(lines[0]!.retryInMs).toBeLessThanOrEqual(20);
  expect((lines[0]!.err as Error).message).toBe('first round fails');
});

test('stop() aborts the round in progress and waits for it; a second stop() and a later start() do nothing', async () => {
  const { log } = recordingLog();
  let began!: () => void;
  const inRound = new Promise<void>((r) => (began = r));
  let rounds = 0;
  let finished = false;
  const p = periodic({
    name: 'test',
    intervalMs: 1,
    log,
    failedEvent: 'test.round_failed',
    round: async (signal) => {
      rounds++;
      began();
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      finished = true;
    },
  });
  p.start();
  await inRound;
  await p.stop();
  expect(finished).toBe(true);
  await p.stop();
  expect(rounds).toBe(1);
  // A start() after stop() schedules nothing, also when stop() came first (a service that stops
  // while starting up); a fresh one schedules its first round.
  const make = () => periodic({ name: 'fresh', intervalMs: 1, log, failedEvent: 'test.round_failed', round: async () => undefined });
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    p.start();
    const early = make();
    await early.stop();
    early.start();
    expect(vi.getTimerCount()).toBe(0);
    make().start();
    expect(vi.getTimerCount()).toBe(1);
    vi.clearAllTimers();
  } finally {
    vi.useRealTimers();
  }
});
