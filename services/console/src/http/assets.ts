/** The page and its browser modules (dist/web/client/*.js, loaded by /assets/app.js). */
import { Hono } from 'hono';
import { HttpProblem } from '@orderflow/kit';
import { PAGE } from '../web/page.js';

// The page loads its script from here only; no inline script or style from data.
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";
// Module paths as tsc writes them: app.js, pages/overview.js — nothing that could leave the directory.
const MODULE = /^[a-z0-9-]+(?:\/[a-z0-9-]+)*\.js$/;

/** Reads one compiled browser module by its path under dist/web/client; undefined if absent. */
export type ClientAssets = (path: string) => Promise<string | undefined>;

export function pageRoutes(o: { namespace: string; tokenRequired: boolean; clientAsset: ClientAssets }): Hono {
  const app = new Hono();
  const html = PAGE({ namespace: o.namespace, tokenRequired: o.tokenRequired });
  app.get('/', (c) => {
    c.header('Cache-Control', 'no-store');
    c.header('Content-Security-Policy', CSP);
    return c.html(html);
  });
  app.get('/assets/*', async (c) => {
    const path = c.req.path.slice('/assets/'.length);
    if (!MODULE.test(path)) throw new HttpProblem(404, `no asset ${path}`);
    const js = await o.clientAsset(path);
    if (js !== undefined) return c.body(js, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
    // The entry missing means the client was never built; any other module is simply not there.
    if (path === 'app.js') throw new HttpProblem(503, 'the console client is not built: run npm run build -w services/console');
    throw new HttpProblem(404, `no asset ${path}`);
  });
  return app;
}
