#!/usr/bin/env bash
# CI leg on the supported Node LTS line (the images' runtime, see Dockerfile): runs the unit-level
# suites — every services/*/test file that starts no child process of its own (no spawned
# services, private nats-server or Postgres) — with that Node, against the same NATS and Postgres
# as `npm test` (the suite's globalSetup starts the current nats-server; Postgres on 127.0.0.1:5432).
#
#   bash scripts/node-lts-leg.sh              # Node $NODE_LTS_VERSION (default in scripts/node-lts.sh)
#   NODE_LTS_VERSION=24.22.3 bash scripts/node-lts-leg.sh [vitest args...]
#
# The Node binary is scripts/node-lts.sh's: from the npm registry, checked and cached by version.
# Needs node_modules (npm ci); the suites run from source, no build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The binary and its version: scripts/node-lts.sh (NODE_LTS_VERSION, npm registry, cached).
node=$(bash "$root/scripts/node-lts.sh")
cache=$(dirname "$(dirname "$node")")
got=$("$node" --version)

cd "$root"
# Unit level: files that spawn nothing themselves. Decided from the source so a new test file is
# picked up (or left out) without editing this list.
mapfile -t files < <(find services -path '*/node_modules' -prune -o -path '*/test/*' -name '*.test.ts' -print | sort \
  | xargs grep -LE "node:child_process|TestNatsServer|TestPostgresServer|startPlatform|startCluster")
[ ${#files[@]} -gt 0 ] || { echo "node-lts-leg: no test files found" >&2; exit 1; }
echo "node-lts-leg: Node $got, ${#files[@]} files: ${files[*]}"

start=$(date +%s)
# PATH first: anything the tests start as `node` runs on this line too. The default reporter only:
# CI's JSON report (test-output/vitest.json) belongs to the main `npm test` run.
status=0
PATH="$cache/bin:$PATH" "$node" node_modules/vitest/vitest.mjs run --project nats-current --reporter=default "${files[@]}" "$@" || status=$?
echo "node-lts-leg: Node $got finished in $(( $(date +%s) - start ))s (exit $status)"
exit $status
