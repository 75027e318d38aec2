import type { Db } from './db.js';
import { openPostgres } from './postgres.js';
import { openPglite } from './pglite.js';

export interface OpenDbOptions {
  url?: string;
  schema: string;
  dataDir?: string;
  poolMax?: number;
}

/** Real Postgres when a URL is given, else embedded PGlite with data in dataDir. */
export function openDb(opts: OpenDbOptions): Promise<Db> {
  if (opts.url) return openPostgres({ url: opts.url, schema: opts.schema, poolMax: opts.poolMax });
  return openPglite({ dataDir: opts.dataDir, schema: opts.schema });
}
