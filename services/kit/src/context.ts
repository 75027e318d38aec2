import { AsyncLocalStorage } from 'node:async_hooks';

/** What a unit of work (an HTTP request, a message handler) carries through async calls. */
export interface WorkContext {
  correlationId: string;
}

const storage = new AsyncLocalStorage<WorkContext>();

export function withWorkContext<T>(ctx: WorkContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

export function currentWorkContext(): WorkContext | undefined {
  return storage.getStore();
}
