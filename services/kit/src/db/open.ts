import type { Logger } from 'pino';
import type { DbSettings } from '../config.js';
import type { Db } from './db.js';
import { openPostgres } from './postgres.js';
import { openPglite } from './pglite.js';

export interface OpenDbOptions {
  url?: string;
  schema: string;
  dataDir?: string;
  poolMax?: number;
  /** Postgres only: per-connection timeouts and keepalive. */
  settings?: Partial<DbSettings>;
  log?: Logger;
}

/** Real Postgres when a URL is given, else embedded PGlite with data in dataDir. */
export function openDb(opts: OpenDbOptions): Promise<Db> {
  if (opts.url) return openPostgres({ url: opts.url, schema: opts.schema, poolMax: opts.poolMax, settings: opts.settings, log: opts.log });
  return openPglite({ dataDir: opts.dataDir, schema: opts.schema });
}
