/** Shared pieces of the reconcile tests. */
import { expect, type MockInstance } from 'vitest';

/** Runs `fn`, then fails the test if any of the spied calls was made; the spies are restored either way. */
export async function withoutCalls<T>(spies: MockInstance[], fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    for (const s of spies) expect(s).not.toHaveBeenCalled();
    return out;
  } finally {
    for (const s of spies) s.mockRestore();
  }
}
