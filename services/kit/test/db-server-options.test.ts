/**
 * PGOPTIONS reaches every pooled connection (as libpq users expect), and the pool's schema still
 * wins over a search_path in it: before, the pool's own `options` silently replaced PGOPTIONS, so
 * a setting given there (a planner A/B, auto_explain) never arrived.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, expect, test } from 'vitest';
import { baseConfig, openPostgres, type Db } from '@orderflow/kit';
import { dropSchema, TEST_DATABASE_URL } from '@orderflow/kit/testing';

const schema = `pgoptions_${randomBytes(4).toString('hex')}`;
const opened: Db[] = [];
afterAll(async () => {
  for (const db of opened.splice(0)) await db.close();
  await dropSchema(schema);
});

test('the settings reader takes PGOPTIONS; every connection gets those settings and the schema search_path', async () => {
  const settings = baseConfig('probe', 1, { PGOPTIONS: '-c work_mem=7777kB -c search_path=public -c application_name=from_env' }).db;
  expect(settings.serverOptions).toBe('-c work_mem=7777kB -c search_path=public -c application_name=from_env');
  const db = await openPostgres({ url: TEST_DATABASE_URL, schema, settings, poolMax: 3 });
  opened.push(db);
  await db.exec('CREATE TABLE IF NOT EXISTS probe (k int)');
  // Three at once: three connections of the pool, each must carry the options.
  const seen = await Promise.all(
    [1, 2, 3].map(() =>
      db.tx(async (sql) => {
        const [row] = await sql.query<{ work_mem: string; search_path: string; pid: number }>(
          "SELECT current_setting('work_mem') AS work_mem, current_setting('search_path') AS search_path, pg_backend_pid() AS pid, pg_sleep(0.05)",
        );
        return row!;
      }),
    ),
  );
  expect(new Set(seen.map((s) => s.pid)).size).toBe(3);
  for (const s of seen) {
    expect(s.work_mem).toBe('7777kB');
    expect(s.search_path).toBe(schema);
  }
  // Unqualified names resolve in the pool's schema, not in the search_path PGOPTIONS asked for.
  const [where] = await db.query<{ schema: string }>(
    "SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'probe' AND table_schema = current_schema()",
  );
  expect(where?.schema).toBe(schema);
});

test('without PGOPTIONS the connection has the server default and only the schema is set', async () => {
  const settings = baseConfig('probe', 1, {}).db;
  expect(settings.serverOptions).toBe('');
  const db = await openPostgres({ url: TEST_DATABASE_URL, schema, settings });
  opened.push(db);
  const [row] = await db.query<{ work_mem: string; search_path: string }>(
    "SELECT current_setting('work_mem') AS work_mem, current_setting('search_path') AS search_path",
  );
  expect(row?.search_path).toBe(schema);
  expect(row?.work_mem).not.toBe('7777kB');
});
