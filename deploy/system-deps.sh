#!/usr/bin/env bash
# Installs the Debian packages Catalyst runs against (and builds its C extension with), only those missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v gcc >/dev/null || need+=(gcc)
command -v protoc-gen-c >/dev/null || need+=(protobuf-c-compiler)
[ -f /usr/include/protobuf-c/protobuf-c.h ] || need+=(libprotobuf-c-dev)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
  || need+=(python3-dev)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "[setup] installing Debian packages: ${need[*]}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
# Debian starts its own redis service; Catalyst runs its own instance under .run/.
if command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null; then
  $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "[setup] installed ${need[*]}"
