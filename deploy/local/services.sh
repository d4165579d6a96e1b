#!/usr/bin/env bash
# Starts and stops Catalyst's services as local background processes (no Docker).
# Usage: services.sh start|stop|status. Services are listed in services.conf beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
run="${CATALYST_RUN_DIR:-$root/.run}/services"
py="${PYTHON:-$root/.venv/bin/python}"
export PYTHONPATH="$root:$root/gen"
mkdir -p "$run"
cd "$root"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
running() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }
services() { grep -v '^#' "$here/services.conf" | grep -v '^\s*$'; }

start() {
  while read -r name port args; do
    if running "$name"; then echo "[services] $name already running"; continue; fi
    if port_open "$port"; then
      echo "[services] port $port for $name is taken by a process this runner did not start; stop it first" >&2
      exit 1
    fi
    echo "[services] starting $name (log: $run/$name.log)"
    local assignments=() words=()
    # shellcheck disable=SC2086
    for word in $args; do
      if [[ ${#words[@]} -eq 0 && $word =~ ^[A-Z_][A-Z0-9_]*= ]]; then assignments+=("$word"); else words+=("$word"); fi
    done
    # $! must be python's own pid (not a wrapper subshell's), or stop would leave the service running: nohup
    # and env exec what they run.
    nohup env "${assignments[@]}" "$py" "${words[@]}" >"$run/$name.log" 2>&1 </dev/null &
    echo $! >"$run/$name.pid"
  done < <(services)
  while read -r name port _; do
    local deadline=$((SECONDS + 60))
    until port_open "$port"; do
      if ! running "$name"; then echo "[services] $name exited; last lines of its log:" >&2; tail -20 "$run/$name.log" >&2; exit 1; fi
      if [ $SECONDS -ge $deadline ]; then echo "[services] $name did not open port $port in time" >&2; exit 1; fi
      sleep 0.3
    done
    echo "[services] $name ready on port $port"
  done < <(services)
}

stop() {
  while read -r name _ _; do
    if ! running "$name"; then rm -f "$run/$name.pid"; continue; fi
    local pid; pid="$(cat "$run/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$run/$name.pid"
    echo "[services] stopped $name"
  done < <(services)
}

status() {
  local rc=0
  while read -r name port _; do
    if running "$name"; then echo "$name: running (pid $(cat "$run/$name.pid"), port $port)"; else echo "$name: stopped"; rc=1; fi
  done < <(services)
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
