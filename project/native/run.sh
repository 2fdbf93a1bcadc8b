#!/usr/bin/env bash
# `make run`: `make start` in the foreground. Follows every service's log
# and stops everything on Ctrl-C (or SIGTERM).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stopping=
stop_all() {
  [ -n "$stopping" ] && return
  stopping=1
  echo
  "$ROOT/project/native/stop.sh"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

"$ROOT/project/native/start.sh"
say "following the logs; Ctrl-C stops everything"
tail -n 0 -F "$RUN_DIR"/*.log &
wait
