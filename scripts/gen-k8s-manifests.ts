/**
 * Regenerates k8s/platform/*.yaml and k8s/observability/*.yaml from charts/orderflow with the real
 * helm (`helm template`, .tools/bin/helm from scripts/tools.sh) and fixed values (namespace
 * "orderflow", NATS from k8s/nats, DATABASE_URL from the Secret "orderflow-db", sandbox gateway
 * and Jaeger on), so the plain manifests and the chart never drift apart:
 *   npx tsx scripts/gen-k8s-manifests.ts
 * Files in those two directories that the chart no longer renders are deleted.
 * test/deploy/k8s-manifests.test.ts fails when the committed files differ from a fresh generation.
 */
import { writeFileSync, mkdirSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plainManifests, GENERATED_DIRS } from '../test/deploy/plain-manifests.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const files = plainManifests();
for (const dir of GENERATED_DIRS) {
  if (!existsSync(join(root, dir))) continue;
  for (const f of readdirSync(join(root, dir))) {
    if (!files.has(`${dir}/${f}`)) {
      rmSync(join(root, dir, f));
      console.log(`removed ${dir}/${f}`);
    }
  }
}
for (const [file, text] of files) {
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(join(root, file), text);
  console.log(`wrote ${file}`);
}
