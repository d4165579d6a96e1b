#!/usr/bin/env bash
# Local Apache Kafka 4 broker (KRaft, single node) from Maven Central jars, no Docker.
# Usage: kafka.sh jars|start|stop|status|ready|logs
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
run="${CATALYST_RUN_DIR:-$root/.run}"
cache="${CATALYST_JAR_CACHE:-$root/.cache/kafka-lib}"
port="${KAFKA_PORT:-9092}"
cport="${KAFKA_CONTROLLER_PORT:-9093}"
dir="$run/kafka"
pidfile="$dir/kafka.pid"
heap="${KAFKA_HEAP:-768m}"

log() { echo "[kafka] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

jars() {
  if [ -f "$cache/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { log "Maven (mvn) is required to fetch the Kafka jars"; exit 1; }
  command -v java >/dev/null || { log "Java 17+ is required to run Kafka"; exit 1; }
  log "first run: fetching Apache Kafka and log4j jars from Maven Central into $cache (once)"
  mkdir -p "$cache"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$cache"
  touch "$cache/.complete"
  log "fetched $(ls "$cache"/*.jar | wc -l) jars"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

ready() {
  port_open "$port" || return 1
  "${PYTHON:-python3}" "$root/deploy/topics.py" ready >/dev/null 2>&1
}

start() {
  jars
  if running; then log "already running (pid $(cat "$pidfile"))"; return 0; fi
  if port_open "$port"; then log "port $port is already in use by another process"; exit 1; fi
  mkdir -p "$dir/data" "$dir/logs"
  sed -e "s#@PORT@#$port#g" -e "s#@CONTROLLER_PORT@#$cport#g" -e "s#@DATA_DIR@#$dir/data#g" \
    "$here/server.properties.in" > "$dir/server.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    log "formatting storage in $dir/data"
    java -cp "$cache/*" kafka.tools.StorageTool format -t "$(java -cp "$cache/*" kafka.tools.StorageTool random-uuid)" \
      -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1
  fi
  log "starting broker on 127.0.0.1:$port (logs: $dir/logs/kafka.log)"
  # Kafka's own launcher's GC flags (kafka-run-class.sh): G1 aiming at 20 ms pauses. With the JVM's default
  # aim (200 ms) its young collections stopped the broker for 18-44 ms under load (docs/benchmark.md).
  nohup java "-Xms256m" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -Dkafka.logs.dir="$dir/logs" -cp "$cache/*" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/kafka.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until port_open "$port"; do
    if ! running; then log "broker exited during start-up; last log lines:"; tail -20 "$dir/logs/kafka.log" >&2; exit 1; fi
    if [ $SECONDS -ge $deadline ]; then log "broker did not open port $port in time"; exit 1; fi
    sleep 0.5
  done
  until ready; do
    if [ $SECONDS -ge $deadline ]; then log "broker did not answer admin requests in time"; exit 1; fi
    sleep 0.5
  done
  log "ready"
}

stop() {
  if ! running; then log "not running"; rm -f "$pidfile"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  log "stopping (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  log "stopped"
}

case "${1:-}" in
  jars) jars ;;
  start) start ;;
  stop) stop ;;
  status) if running && port_open "$port"; then echo "kafka: running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; else echo "kafka: stopped"; exit 1; fi ;;
  ready) ready ;;
  logs) tail -n "${LINES:-50}" "$dir/logs/kafka.log" ;;
  *) echo "usage: $0 jars|start|stop|status|ready|logs" >&2; exit 2 ;;
esac
