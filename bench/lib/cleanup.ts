/**
 * Everything a bench run creates (child processes, streams, schemas, temp dirs) registers how to
 * undo itself here; `runCleanup` undoes it in reverse order, also after a failure or Ctrl-C.
 */
type Undo = { what: string; fn: () => Promise<void> | void };

const stack: Undo[] = [];

export function onCleanup(what: string, fn: () => Promise<void> | void): () => Promise<void> {
  const entry: Undo = { what, fn };
  stack.push(entry);
  // Running it early (a section finishing) removes it from the stack.
  return async () => {
    const i = stack.indexOf(entry);
    if (i < 0) return;
    stack.splice(i, 1);
    await entry.fn();
  };
}

export async function runCleanup(): Promise<void> {
  while (stack.length) {
    const u = stack.pop()!;
    try {
      await Promise.race([u.fn(), new Promise((r) => setTimeout(r, 15_000))]);
    } catch (err) {
      console.error(`cleanup of ${u.what} failed: ${(err as Error).message}`);
    }
  }
}
