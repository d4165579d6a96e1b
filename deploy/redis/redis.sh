#!/usr/bin/env bash
# Local redis-server on loopback with AOF, data under .run/redis. Usage: redis.sh start|stop|status
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
run="${CATALYST_RUN_DIR:-$root/.run}"
port="${REDIS_PORT:-6379}"
dir="$run/redis"
log() { echo "[redis] $*" >&2; }
cli() { redis-cli -p "$port" "$@"; }
running() { cli ping >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if running; then log "already running on 127.0.0.1:$port"; exit 0; fi
    command -v redis-server >/dev/null || bash "$root/deploy/system-deps.sh"
    mkdir -p "$dir/data" "$dir/logs"
    redis-server "$root/deploy/redis/catalyst.conf" --bind 127.0.0.1 --port "$port" --dir "$dir/data" --appendonly yes --appendfsync everysec \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/logs/redis.log" --save "" --protected-mode yes
    for _ in $(seq 1 50); do running && { log "ready on 127.0.0.1:$port"; exit 0; }; sleep 0.1; done
    log "did not start; see $dir/logs/redis.log"; exit 1 ;;
  stop)
    if running; then cli shutdown >/dev/null 2>&1 || true; log "stopped"; else log "not running"; fi ;;
  status)
    if running; then echo "redis: running on 127.0.0.1:$port"; else echo "redis: stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
