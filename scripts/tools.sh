#!/usr/bin/env bash
# The project's one way to get the Go programs the tests and docs use: each is built with the
# ordinary `go` command from the Go module proxy, pinned by its own module under tools/<dir>
# (go.mod + go.sum), never downloaded as a prebuilt binary.
#
#   scripts/tools.sh                 build the default set (what `npm test` needs)
#   scripts/tools.sh helm kubectl    build these
#   scripts/tools.sh --all           every tool below
#   scripts/tools.sh --missing       every tool below that .tools/bin has no working link for
#                                    (the test suite's setup: no lock waits when all are there)
#   scripts/tools.sh --list          name, pinned version and cache state of each
#
# Binaries land in $ORDERFLOW_TOOLS_CACHE (default ~/.cache/orderflow-tools)/<tool>/<key>/, key =
# version + a hash of that tool's go.mod/go.sum, so a new pin builds anew and an old one stays
# usable; .tools/bin/<tool> (git-ignored) links to the current build. A second run builds nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ORDERFLOW_TOOLS_CACHE:-$HOME/.cache/orderflow-tools}
bindir=$root/.tools/bin
export GOFLAGS=${GOFLAGS:--mod=mod}
export CGO_ENABLED=${CGO_ENABLED:-0}

# tool  module-dir  package  version-module
table=$(cat <<'EOF'
nats-server    nats-server  github.com/nats-io/nats-server/v2              github.com/nats-io/nats-server/v2
nats           natscli      github.com/nats-io/natscli/nats                github.com/nats-io/natscli
helm           helm         helm.sh/helm/v3/cmd/helm                       helm.sh/helm/v3
etcd           etcd         go.etcd.io/etcd/server/v3                      go.etcd.io/etcd/server/v3
kube-apiserver kubernetes   k8s.io/kubernetes/cmd/kube-apiserver           k8s.io/kubernetes
kubectl        kubernetes   k8s.io/kubernetes/cmd/kubectl                  k8s.io/kubernetes
jaeger         jaeger       github.com/jaegertracing/jaeger/cmd/jaeger     github.com/jaegertracing/jaeger
prometheus     prometheus   github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus
promtool       prometheus   github.com/prometheus/prometheus/cmd/promtool  github.com/prometheus/prometheus
EOF
)
default_set="nats-server nats helm etcd kube-apiserver kubectl"

row() { awk -v t="$1" '$1 == t' <<<"$table"; }
version_of() { # module-dir version-module → pinned version from that go.mod
  awk -v m="$2" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$root/tools/$1/go.mod"
}
key_of() { # tool → cache key
  local r dir ver
  r=$(row "$1"); dir=$(awk '{print $2}' <<<"$r")
  ver=$(version_of "$dir" "$(awk '{print $4}' <<<"$r")")
  echo "$ver-$( (cat "$root/tools/$dir/go.mod" "$root/tools/$dir/go.sum"; ldflags_for "$1" "$ver") | sha256sum | cut -c1-12)"
}

ldflags_for() { # version stamps the upstream Makefiles set, so `--version` and skew checks tell the truth
  local tool=$1 ver=$2 minor
  case $tool in
    kube-apiserver|kubectl)
      minor=$(cut -d. -f2 <<<"$ver")
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' "$p" "$ver" "$p" "$p" "$minor" "$p"
      done ;;
    helm) # the Kubernetes version helm assumes offline (`helm template`, lint) follows its client-go, as upstream's Makefile sets it
      minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$root/tools/helm/go.mod")
      printf -- '-X helm.sh/helm/v3/internal/version.version=%s ' "$ver"
      for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
        printf -- '-X %s.k8sVersionMajor=1 -X %s.k8sVersionMinor=%s ' "$p" "$p" "$minor"
      done ;;
    prometheus|promtool)
      printf -- '-X github.com/prometheus/common/version.Version=%s ' "$ver" ;;
  esac
}

build() {
  local tool=$1 r dir pkg vmod ver key out start secs tmp lock
  r=$(row "$tool")
  [ -n "$r" ] || { echo "tools: unknown tool '$tool' (see --list)" >&2; return 2; }
  read -r _ dir pkg vmod <<<"$r"
  ver=$(version_of "$dir" "$vmod"); key=$(key_of "$tool")
  out=$cache/$tool/$key
  mkdir -p "$bindir" "$cache/$tool"
  # One build of a tool at a time on this machine: a second caller waits, then finds it cached.
  exec {lock}>"$cache/$tool/.lock"
  flock "$lock"
  if [ -x "$out/$tool" ]; then
    ln -sfn "$out/$tool" "$bindir/$tool"
    exec {lock}>&-
    echo "tools: $tool $ver cached ($out/$tool)"
    return 0
  fi
  echo "tools: building $tool $ver from $pkg ..."
  start=$(date +%s)
  tmp=$(mktemp -d "$cache/$tool/.build.XXXXXX")
  # Built aside and moved in whole, so a concurrent or interrupted run never sees half a binary.
  (cd "$root/tools/$dir" && go build -trimpath -ldflags "-s -w $(ldflags_for "$tool" "$ver")" -o "$tmp/$tool" "$pkg") \
    || { rm -rf "$tmp"; echo "tools: building $tool $ver failed" >&2; return 1; }
  mkdir -p "$out" && mv "$tmp/$tool" "$out/$tool" && rm -rf "$tmp"
  secs=$(( $(date +%s) - start ))
  ln -sfn "$out/$tool" "$bindir/$tool"
  exec {lock}>&-
  echo "tools: built $tool $ver in ${secs}s"
}

case "${1:-}" in
  --list)
    while read -r tool dir _ vmod; do
      k=$(key_of "$tool")
      state=missing; [ -x "$cache/$tool/$k/$tool" ] && state=cached
      printf '%-15s %-10s %s\n' "$tool" "$(version_of "$dir" "$vmod")" "$state"
    done <<<"$table"
    exit 0 ;;
  --all) set -- $(awk '{print $1}' <<<"$table") ;;
  --missing)
    set --
    for t in $(awk '{print $1}' <<<"$table"); do [ -x "$bindir/$t" ] || set -- "$@" "$t"; done
    [ $# -gt 0 ] || exit 0 ;;
  "") set -- $default_set ;;
esac
command -v go >/dev/null || { echo "tools: the go command is missing (Go 1.26 with the module proxy is expected)" >&2; exit 1; }
total=$(date +%s)
for t in "$@"; do build "$t"; done
echo "tools: ready in $(( $(date +%s) - total ))s: $*"
