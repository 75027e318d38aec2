/**
 * Regenerates k8s/platform/*.yaml and k8s/observability/jaeger.yaml from charts/orderflow with
 * fixed values (namespace "orderflow", NATS from k8s/nats, DATABASE_URL from the Secret
 * "orderflow-db"), so the plain manifests and the chart never drift apart.
 *   npx tsx scripts/gen-k8s-manifests.ts
 * test/deploy/manifests.test.ts fails when the committed files differ from a fresh render.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainManifests } from '../test/deploy/plain-manifests.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const [file, text] of plainManifests(root)) {
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(join(root, file), text);
  console.log(`wrote ${file}`);
}
