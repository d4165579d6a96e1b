#!/usr/bin/env bash
# Runs a command with Kafka and Redis available: starts whichever is not running, and stops
# afterwards only what it started, also when a start fails or the run is interrupted.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=()
stop_started() { for s in "${started[@]}"; do bash "$here/$s/$s.sh" stop; done; }
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ! bash "$here/redis/redis.sh" status >/dev/null 2>&1; then
  started+=(redis)  # before the start: a start that fails half-way is stopped too
  bash "$here/redis/redis.sh" start || exit 1
fi
# Whether a process is running decides, not whether it answers quickly: a busy broker that is slow to answer
# must not be "started" here and then stopped under the feet of whoever else uses it.
if ! bash "$here/kafka/kafka.sh" status >/dev/null 2>&1 && ! "${PYTHON:-python3}" "$here/topics.py" ready >/dev/null 2>&1; then
  started+=(kafka)
  bash "$here/kafka/kafka.sh" start || exit 1
fi
"${PYTHON:-python3}" "$here/topics.py" create || exit 1
"$@"
