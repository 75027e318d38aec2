/** The bare-Hono baseline: the same server stack as the services, a POST that echoes JSON. */
import { Hono } from 'hono';
import { serve } from '@hono/node-server';

const app = new Hono();
app.get('/ready', (c) => c.text('ok'));
app.post('/echo', async (c) => c.json(await c.req.json(), 202));
const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: '127.0.0.1' });
process.once('SIGTERM', () => server.close(() => process.exit(0)));
