/**
 * A STAND-IN for kube-apiserver, for tests only: no real API server can be installed here.
 * It speaks the real REST paths and semantics the operator relies on, in-process (node:http):
 * - custom objects: list (cluster and namespaced), get, create, replace, merge-patch, delete,
 *   the `status` subresource (patch ignores spec; spec changes bump metadata.generation);
 * - watch with `resourceVersion` resumption, BOOKMARK events when `allowWatchBookmarks=true`,
 *   and `410 Gone` (ERROR event) for a resourceVersion older than the compacted history;
 * - optimistic concurrency: a write carrying a stale metadata.resourceVersion gets 409 Conflict;
 * - finalizers: DELETE of an object with finalizers sets deletionTimestamp; the object goes away
 *   when the last finalizer is removed;
 * - coordination.k8s.io/v1 Lease objects (get / create / replace with 409 on conflict).
 * It is not a full API server: no admission, no schema validation, no field/label selectors.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

type Obj = { apiVersion?: string; kind?: string; metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string }; [k: string]: unknown };
interface WatchEvent { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj; rv: number; collection: string }
interface Watcher { collection: string; namespace?: string; res: ServerResponse; bookmarks: boolean }

export interface RequestRecord { method: string; path: string; query: string; status: number }

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const clone = <T>(x: T): T => structuredClone(x);

export class StandInApiServer {
  readonly requests: RequestRecord[] = [];
  private readonly objects = new Map<string, Obj>(); // `${collection}/${ns}/${name}`
  private readonly history: WatchEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private rv = 1;
  /** Watches from a resourceVersion below this get 410 Gone. */
  private compactedRv = 0;
  private server: Server | undefined;
  private bookmarkTimer: NodeJS.Timeout | undefined;
  /** Requests for these paths (prefix) fail with 500 while set: simulates an API outage. */
  failPaths: string[] = [];

  constructor(private readonly bookmarkEveryMs = 200) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), this.bookmarkEveryMs);
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    this.dropWatches();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }

  /** Closes every open watch connection (the informer must reconnect from its resourceVersion). */
  dropWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  /**
   * Forgets event history (as etcd compaction does, while other writes move resourceVersion on)
   * and closes the watches: every informer resumes from a now-too-old resourceVersion → 410 Gone.
   */
  compactAndDropWatches(): void {
    this.rv++;
    this.compactedRv = this.rv;
    this.history.length = 0;
    this.dropWatches();
  }

  /** Direct read for assertions. */
  get(collection: string, namespace: string, name: string): Obj | undefined {
    const o = this.objects.get(`${collection}/${namespace}/${name}`);
    return o && clone(o);
  }

  watchCount(): number {
    return this.watchers.size;
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query: url.search, status: 0 };
    this.requests.push(rec);
    const send = (status: number, body: unknown): void => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const fail = (status: number, reason: string, message: string): void =>
      send(status, { apiVersion: 'v1', kind: 'Status', status: 'Failure', reason, message, code: status });
    if (this.failPaths.some((p) => url.pathname.startsWith(p))) return fail(500, 'InternalError', 'stand-in outage');

    // /apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/status]]
    const m = /^\/apis\/([^/]+)\/([^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(url.pathname);
    if (!m) return fail(404, 'NotFound', `no route ${url.pathname}`);
    const [, group, version, namespace, plural, name, sub] = m as unknown as [string, string, string, string | undefined, string, string | undefined, string | undefined];
    const collection = `${group}/${version}/${plural}`;
    const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : await readJson(req);

    if (!name) {
      if (req.method === 'GET' && url.searchParams.get('watch') === 'true') {
        rec.status = 200;
        return this.watch(collection, namespace, url.searchParams, res);
      }
      if (req.method === 'GET') {
        const items = [...this.objects.entries()].filter(([k]) => k.startsWith(`${collection}/${namespace ?? ''}`)).map(([, o]) => o);
        return send(200, { apiVersion: `${group}/${version}`, kind: 'List', metadata: { resourceVersion: String(this.rv) }, items });
      }
      if (req.method === 'POST' && namespace) {
        const o = body as Obj;
        const key = `${collection}/${namespace}/${o.metadata.name}`;
        if (this.objects.has(key)) return fail(409, 'AlreadyExists', `${plural} "${o.metadata.name}" already exists`);
        o.metadata = { ...o.metadata, namespace, uid: randomUUID(), generation: 1, creationTimestamp: new Date().toISOString() };
        return send(201, this.write(collection, key, o, 'ADDED'));
      }
      return fail(405, 'MethodNotAllowed', req.method ?? '');
    }
    if (!namespace) return fail(404, 'NotFound', 'cluster-scoped objects are not served');
    const key = `${collection}/${namespace}/${name}`;
    const current = this.objects.get(key);
    if (!current) return fail(404, 'NotFound', `${plural} "${name}" not found`);

    if (req.method === 'GET') return send(200, current);
    if (req.method === 'DELETE') {
      const finalizers = (current.metadata.finalizers as string[] | undefined) ?? [];
      if (finalizers.length === 0) return send(200, this.remove(collection, key));
      if (current.metadata.deletionTimestamp) return send(200, current);
      const next = clone(current);
      next.metadata.deletionTimestamp = new Date().toISOString();
      return send(200, this.write(collection, key, next, 'MODIFIED'));
    }
    if (req.method === 'PUT' || req.method === 'PATCH') {
      const incoming = body as Partial<Obj>;
      const wantRv = incoming.metadata?.resourceVersion;
      if (wantRv !== undefined && wantRv !== current.metadata.resourceVersion) {
        return fail(409, 'Conflict', `Operation cannot be fulfilled on ${plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
      if (req.method === 'PATCH' && !String(req.headers['content-type']).startsWith('application/merge-patch+json')) {
        return fail(415, 'UnsupportedMediaType', `stand-in supports merge patch only, got ${String(req.headers['content-type'])}`);
      }
      let next: Obj = req.method === 'PUT' ? { ...clone(incoming as Obj), metadata: { ...current.metadata, ...incoming.metadata } } : (mergePatch(current, incoming) as Obj);
      if (sub === 'status') {
        // The status subresource only ever changes status.
        next = { ...clone(current), status: next.status };
      } else {
        // The main resource never changes status (status subresource enabled).
        next.status = current.status;
        if (JSON.stringify(next.spec) !== JSON.stringify(current.spec)) next.metadata.generation = Number(current.metadata.generation ?? 1) + 1;
        // Finalizers may only be removed once deletion started, never re-added.
        if (current.metadata.deletionTimestamp) next.metadata.deletionTimestamp = current.metadata.deletionTimestamp;
      }
      const finalizers = (next.metadata.finalizers as string[] | undefined) ?? [];
      if (next.metadata.deletionTimestamp && finalizers.length === 0) return send(200, this.remove(collection, key));
      return send(200, this.write(collection, key, next, 'MODIFIED'));
    }
    return fail(405, 'MethodNotAllowed', req.method ?? '');
  }

  private write(collection: string, key: string, o: Obj, type: 'ADDED' | 'MODIFIED'): Obj {
    this.rv++;
    o.metadata.resourceVersion = String(this.rv);
    this.objects.set(key, clone(o));
    this.emit({ type, object: clone(o), rv: this.rv, collection });
    return o;
  }

  private remove(collection: string, key: string): Obj {
    const o = this.objects.get(key)!;
    this.objects.delete(key);
    this.rv++;
    o.metadata.resourceVersion = String(this.rv);
    this.emit({ type: 'DELETED', object: clone(o), rv: this.rv, collection });
    return o;
  }

  private emit(e: WatchEvent): void {
    this.history.push(e);
    for (const w of this.watchers) if (this.matches(w, e)) w.res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
  }

  private matches(w: { collection: string; namespace?: string }, e: WatchEvent): boolean {
    return e.collection === w.collection && (!w.namespace || e.object.metadata.namespace === w.namespace);
  }

  private watch(collection: string, namespace: string | undefined, q: URLSearchParams, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const from = Number(q.get('resourceVersion') || '0');
    const w: Watcher = { collection, namespace, res, bookmarks: q.get('allowWatchBookmarks') === 'true' };
    if (from > 0 && from < this.compactedRv) {
      // What kube-apiserver does for a too-old resourceVersion: an ERROR event, then close.
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${from} (${this.compactedRv})` } })}\n`);
      return;
    }
    for (const e of this.history) if (e.rv > from && this.matches(w, e)) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }

  private sendBookmarks(): void {
    for (const w of this.watchers) {
      if (w.bookmarks) w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Bookmark', metadata: { resourceVersion: String(this.rv) } } })}\n`);
    }
  }

  // ---- helpers for tests (through HTTP, so they go through the same semantics) ----

  url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}
