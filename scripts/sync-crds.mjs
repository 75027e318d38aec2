#!/usr/bin/env node
// Copies the CRDs from k8s/crds/ (the operator's source of truth) into charts/orderflow/crds/,
// where Helm installs them before the templates. `--check` exits 1 when the copies differ.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'k8s', 'crds');
const dst = join(root, 'charts', 'orderflow', 'crds');
const check = process.argv.includes('--check');
const isYaml = (f) => /\.ya?ml$/.test(f);

const from = existsSync(src) ? readdirSync(src).filter(isYaml).sort() : [];
const to = existsSync(dst) ? readdirSync(dst).filter(isYaml).sort() : [];
const problems = [];
for (const f of from) {
  const want = readFileSync(join(src, f), 'utf8');
  const have = to.includes(f) ? readFileSync(join(dst, f), 'utf8') : null;
  if (have === want) continue;
  if (check) problems.push(`${f}: ${have === null ? 'missing' : 'differs'} in charts/orderflow/crds`);
  else { mkdirSync(dst, { recursive: true }); writeFileSync(join(dst, f), want); console.log(`synced ${f}`); }
}
for (const f of to.filter((f) => !from.includes(f))) {
  if (check) problems.push(`${f}: not in k8s/crds`);
  else { rmSync(join(dst, f)); console.log(`removed ${f}`); }
}
if (problems.length) {
  console.error(`CRDs out of sync (run node scripts/sync-crds.mjs):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
if (!from.length) console.log('k8s/crds/ has no CRDs yet; nothing to sync');
