/**
 * The one way a process serves HTTP. It listens at once with whatever app it is given — the
 * probes, as controller-runtime does — so /health answers and /ready says what is missing while
 * the rest starts (database migrations, NATS); `use()` then hands requests to the full app.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';

export interface Fetchable {
  /** Hono's fetch: the node bindings (`env.incoming`, the TCP peer) come as the second argument. */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

export interface HttpServing {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Requests go to this app from now on (the probes first, then the full app). */
  use(app: Fetchable): void;
  /**
   * Stops listening and waits for requests in flight. `connections: 'all'` also cuts keep-alive
   * and streaming connections at once (the console's event streams). Idempotent.
   */
  close(o?: { connections?: 'idle' | 'all' }): Promise<void>;
}

export async function serveHttp(app: Fetchable, o: { port: number; hostname?: string }): Promise<HttpServing> {
  let current = app;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      { fetch: (req: Request, env: unknown) => current.fetch(req, env), port: o.port, hostname: o.hostname ?? '0.0.0.0' },
      () => resolve(s as Server),
    );
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    use(next) {
      current = next;
    },
    close(c = {}) {
      return (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (c.connections === 'all') server.closeAllConnections();
        else server.closeIdleConnections();
      }));
    },
  };
}
