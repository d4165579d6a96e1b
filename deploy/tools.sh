#!/usr/bin/env bash
# Installs the operations tools the tests drive, only what is missing (idempotent):
#   Debian: prometheus + promtool, kcat, protoc (protobuf-compiler + libprotobuf-dev for the well-known types)
#   Go:     kubeconform and grpcurl (`go install`, into .cache/bin)
#   PyPI:   Kubernetes JSON schemas (shipped inside kubernetes-validate) rewritten for offline kubeconform
#   npm:    the Node.js gRPC client in tests/clients/node
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache"
bin="$cache/bin"
mkdir -p "$bin"

KUBECONFORM="github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
GRPCURL="github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"
K8S_VALIDATE="kubernetes-validate==1.37.0"
K8S_VERSION="v1.33.0"

say() { echo "[tools] $*"; }
die() { echo "[tools] ERROR: $*" >&2; exit 1; }

debian_packages() {
  local need=()
  command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
  command -v kcat >/dev/null || need+=(kcat)
  command -v protoc >/dev/null || need+=(protobuf-compiler)
  # google/protobuf/*.proto (Timestamp), which Debian's protoc finds in /usr/include
  [ -f /usr/include/google/protobuf/timestamp.proto ] || need+=(libprotobuf-dev)
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

go_tools() {
  local go; go="$(command -v go || true)"
  [ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; }
  [ -n "$go" ] || die "the Go toolchain (1.22 or newer) is needed to install kubeconform and grpcurl"
  local stamp="$bin/.go-tools" want="$KUBECONFORM $GRPCURL"
  if [ -x "$bin/kubeconform" ] && [ -x "$bin/grpcurl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  say "go install kubeconform and grpcurl into $bin"
  local tool
  for tool in $want; do GOBIN="$bin" GOFLAGS="${GOFLAGS:--buildvcs=false}" "$go" install "$tool"; done
  echo "$want" >"$stamp"
}

# kubernetes-validate ships per-kind schemas whose $ref points at https://kubernetes.io/api/_definitions.json
# (through their $id). Dropping $id and making the ref relative lets kubeconform resolve it from disk.
k8s_schemas() {
  local out="$cache/k8s-schemas/$K8S_VERSION-strict"
  [ -f "$out/.done" ] && return
  local py="${PYTHON:-$root/.venv/bin/python}"
  [ -x "$py" ] || py="$(command -v python3)"
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

node_client() {
  local dir="$root/tests/clients/node"
  command -v npm >/dev/null || die "Node.js 18+ with npm is needed for the Node.js client test"
  if [ -d "$dir/node_modules" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    return
  fi
  say "npm ci in tests/clients/node"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

debian_packages
go_tools
k8s_schemas
node_client
