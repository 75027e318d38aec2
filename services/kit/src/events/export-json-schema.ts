/**
 * Writes one JSON Schema file per event version to services/kit/schemas/ (`npm run schemas`).
 * A test regenerates them in memory and fails when the committed files are stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toJsonSchema } from '@valibot/to-json-schema';
import type { GenericSchema } from 'valibot';
import { EVENT_SCHEMAS } from './schemas.js';

export const SCHEMA_BASE_URI = 'https://orderflow.dev/schemas/events';

/** Renders a catalogue (default: the platform's) to JSON Schema file texts by file name. */
export function renderJsonSchemas(catalogue: Record<string, Record<string, GenericSchema>> = EVENT_SCHEMAS): Map<string, string> {
  const out = new Map<string, string>();
  for (const [type, versions] of Object.entries(catalogue)) {
    for (const [version, schema] of Object.entries(versions)) {
      const json = {
        $schema: 'http://json-schema.org/draft-07/schema#',
        $id: `${SCHEMA_BASE_URI}/${type}/${version}.json`,
        title: `${type} ${version}`,
        ...toJsonSchema(schema, { errorMode: 'ignore' }),
      };
      out.set(`${type}.${version}.json`, JSON.stringify(json, null, 2) + '\n');
    }
  }
  return out;
}

export function schemasDir(): string {
  // dist/events or src/events → package root/schemas
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = schemasDir();
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of renderJsonSchemas()) writeFileSync(join(dir, file), text);
  console.error(`wrote ${renderJsonSchemas().size} schemas to ${dir}`);
}
