import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP pass-through in front of the gateway that can lose charge requests: with `swallowCharges`
 * on, a POST /charges is read and held without an answer and never forwarded (the request was
 * dropped on the way: the client times out, the gateway never hears of it). Everything else is
 * forwarded to the gateway as is.
 */
export class SwallowingProxy {
  swallowCharges = true;
  /** Charge requests held here (they never reached the gateway). */
  swallowed = 0;
  url = '';
  readonly #held = new Set<ServerResponse>();
  readonly #server = createServer((req, res) => void this.#handle(req, res));

  /** `target` is read per request, so the proxy can start before the gateway. */
  constructor(private readonly target: () => string) {}

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.#held) res.destroy();
    this.#held.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (this.swallowCharges && req.method === 'POST' && req.url?.split('?')[0] === '/charges') {
      this.swallowed++;
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return;
    }
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const r = await fetch(`${this.target()}${req.url ?? '/'}`, {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
      });
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch (err) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${(err as Error).message}`);
    }
  }
}
