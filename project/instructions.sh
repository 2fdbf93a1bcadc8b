#!/usr/bin/env bash
# Instructions per request of one service, counted by valgrind's callgrind
# (docs/bench/README.md, "Reproduce"): a count, not a time, so the same
# build gives the same figure whatever else the machine does, and a change
# of a few percent shows where timed runs drown in the machine's noise.
#
#   project/instructions.sh [SERVICE] [TRANSPORT ...]
#
# SERVICE (default broker-service) is one of the native stack's; each
# TRANSPORT (default: rpc grpc http amqp) is a log request through the
# broker's POST /handle, and `hit` the broker's POST / (no downstream call). For each, the stack is started (release build),
# SERVICE is restarted under callgrind with its own environment, sent 5 s
# of requests at concurrency 4 to warm it, then counted over 15 s. With
# BASELINE_ROOT (a worktree of another commit), that checkout's services
# are counted the same way first, on this stack's infrastructure.
# Prints one line per checkout and transport: requests, instructions, and
# instructions per request.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/native/common.sh"

service=${1:-broker-service}
shift || true
transports=("$@")
[ ${#transports[@]} -gt 0 ] || transports=(rpc grpc http amqp)
export PROFILE=release RUST_LOG=${RUST_LOG:-warn}
use_token_key

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

scratch=$(mktemp -d)
counted=
cleanup() {
  [ -z "$counted" ] || kill "$counted" 2>/dev/null || true
  "$ROOT/project/native/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT

roots=()
[ -z "${BASELINE_ROOT:-}" ] || roots+=("$BASELINE_ROOT")
roots+=("$ROOT")

for root in "${roots[@]}"; do
  commit=$(git -C "$root" rev-parse --short HEAD)
  for transport in "${transports[@]}"; do
    "$ROOT/project/native/stop.sh" >/dev/null 2>&1 || true
    RUN_DIR=$RUN_DIR INFRA_DIR=$INFRA_DIR "$root/project/native/start.sh" >"$scratch/start.log" 2>&1 \
      || { tail -n 20 "$scratch/start.log" >&2; die "the stack of $root did not start"; }
    pid=$(cat "$RUN_DIR/$service.pid")
    exe=$(readlink "/proc/$pid/exe")
    mapfile -d '' environment <"/proc/$pid/environ"
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    out=$scratch/callgrind.out
    env -i "${environment[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" \
      >"$scratch/valgrind.log" 2>&1 &
    counted=$!
    ready=
    for _ in $(seq 240); do
      if curl -sf -o /dev/null --max-time 2 http://127.0.0.1:8080/readyz; then ready=1; break; fi
      sleep 0.5
    done
    [ -n "$ready" ] || die "$service did not come back under valgrind ($scratch/valgrind.log)"
    if [ "$transport" = hit ]; then
      url=http://127.0.0.1:8080/ what="POST /"
      echo 'wrk.method = "POST"' >"$scratch/post.lua"
    else
      url=http://127.0.0.1:8080/handle what="log via $transport"
      cat >"$scratch/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"action":"log","transport":"$transport","log":{"name":"instructions","data":"counted"}}'
wrk.headers["Content-Type"] = "application/json"
EOF
    fi
    wrk -t1 -c4 -d5s -s "$scratch/post.lua" "$url" >/dev/null
    callgrind_control --zero "$counted" >/dev/null
    requests=$(wrk -t1 -c4 -d15s -s "$scratch/post.lua" "$url" | awk '/requests in/ {print $1}')
    callgrind_control --dump "$counted" >/dev/null
    sleep 1
    kill "$counted"
    wait "$counted" 2>/dev/null || true
    counted=
    total=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    rm -f "$out" "$out".*
    printf '%s %s %s: %d requests, %d instructions, %d per request\n' \
      "$service" "$commit" "$what" "$requests" "$total" "$((total / requests))"
  done
done
