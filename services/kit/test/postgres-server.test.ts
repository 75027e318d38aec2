import { existsSync } from 'node:fs';
import { afterAll, expect, test } from 'vitest';
import pg from 'pg';
import { TestPostgresServer } from '@orderflow/kit/testing';

let server: TestPostgresServer | undefined;
afterAll(async () => {
  await server?.cleanup();
});

async function query<R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

test('a private cluster: start, stop, kill -9 and start again keep the data; cleanup stops it and removes its directory', async () => {
  server = await TestPostgresServer.create({ database: 'test' });
  const s = server;
  await s.start();
  expect(s.url).toBe(`postgres://postgres@127.0.0.1:${s.port}/test`);
  await query(s.url, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)');

  await s.stop('fast');
  expect(s.pid).toBeUndefined();
  await expect(query(s.url, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  await s.start();
  expect(await query(s.url, 'SELECT v FROM kept')).toEqual([{ v: 1 }]);

  await s.kill();
  expect(s.pid).toBeUndefined();
  await s.start(); // crash recovery
  expect(await query(s.url, 'SELECT v FROM kept')).toEqual([{ v: 1 }]);

  const dir = s.dir;
  await s.cleanup();
  await s.cleanup();
  expect(existsSync(dir)).toBe(false);
  await expect(query(s.url, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
});
