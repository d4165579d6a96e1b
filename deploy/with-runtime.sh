#!/usr/bin/env bash
# Runs a command with Kafka and Redis available: starts whichever is not running, and stops
# afterwards only what it started.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=()
if ! bash "$here/redis/redis.sh" status >/dev/null 2>&1; then
  bash "$here/redis/redis.sh" start || exit 1; started+=(redis)
fi
if ! "${PYTHON:-python3}" "$here/topics.py" ready >/dev/null 2>&1; then
  bash "$here/kafka/kafka.sh" start || exit 1; started+=(kafka)
fi
"${PYTHON:-python3}" "$here/topics.py" create || exit 1
"$@"; rc=$?
for s in "${started[@]}"; do bash "$here/$s/$s.sh" stop; done
exit $rc
