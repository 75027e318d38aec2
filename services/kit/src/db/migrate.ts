import type { Db } from './db.js';

export interface Migration {
  id: string;
  sql: string;
}

/**
 * Applies pending migrations in order, each in its own transaction, under an advisory lock so
 * replicas starting together don't race.
 */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<string[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
  const applied: string[] = [];
  for (const m of migrations) {
    const did = await db.tx(async (sql) => {
      // A replica waits here while another one migrates, and a migration may rewrite a big table:
      // neither is a hung statement, so the connection's statement and lock timeouts are lifted.
      await sql.exec(`SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0`);
      await sql.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.migrations'))`);
      const done = await sql.query(`SELECT 1 FROM schema_migrations WHERE id = $1`, [m.id]);
      if (done.length) return false;
      await sql.exec(m.sql);
      await sql.query(`INSERT INTO schema_migrations (id) VALUES ($1)`, [m.id]);
      return true;
    });
    if (did) applied.push(m.id);
  }
  return applied;
}
