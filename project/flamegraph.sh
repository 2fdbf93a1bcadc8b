#!/usr/bin/env bash
# `make flamegraph`: where the broker spends its time on `POST /` (the hit
# path: the HTTP stack and middleware, no downstream call), as a flame
# graph in docs/bench/broker-hit.svg (docs/bench/README.md).
#
# Starts the native stack in release mode if it is not running (and stops
# it again after), drives `POST /` with wrk at concurrency 64, and samples
# the broker with perf (software clock at 499 Hz, DWARF call graphs) for 8
# seconds of it; inferno folds the stacks and draws the graph. Installs
# what is missing: perf (linux-perf) and wrk from Debian, inferno from
# crates.io.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/native/common.sh"

export PROFILE=release
export RUST_LOG=${BENCH_RUST_LOG:-warn}
use_token_key

command -v perf >/dev/null || apt_install linux-perf
command -v wrk >/dev/null || apt_install wrk
if ! command -v inferno-flamegraph >/dev/null; then
  say "installing inferno (crates.io)"
  cargo install --quiet --locked inferno --no-default-features --features cli
fi

started=
if port_open 127.0.0.1 8080; then
  warn "a stack is already running: profiling its broker as it is"
else
  "$ROOT/project/native/start.sh"
  started=1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"; [ -z "$started" ] || "$ROOT/project/native/stop.sh"' EXIT

pid=$(cat "$RUN_DIR/broker-service.pid")
printf 'wrk.method = "POST"\n' >"$scratch/post.lua"
say "wrk -c64 on POST / for 12 s; perf samples the broker (pid $pid) for 8 s of it"
wrk -t2 -c64 -d12s -s "$scratch/post.lua" http://127.0.0.1:8080/ >"$scratch/wrk.txt" &
load=$!
sleep 2
perf record --quiet -F 499 --call-graph dwarf,16384 -p "$pid" -o "$scratch/perf.data" -- sleep 8
wait "$load"
grep -E 'Requests/sec|Latency ' "$scratch/wrk.txt" || true

out=$ROOT/docs/bench/broker-hit.svg
perf script --input "$scratch/perf.data" 2>/dev/null | inferno-collapse-perf >"$scratch/folded.txt"
inferno-flamegraph --title "broker-service, POST / under wrk -c64 (perf, 499 Hz)" \
  --width 1200 <"$scratch/folded.txt" >"$out"
say "flame graph written to $out ($(wc -l <"$scratch/folded.txt") distinct stacks)"
# The heaviest frames by their own samples, for docs/bench/README.md.
awk '{ n = $NF; line = $0; sub(/ [0-9]+$/, "", line); k = split(line, frames, ";"); self[frames[k]] += n; total += n }
  END { for (f in self) printf "%5.1f%%  %s\n", 100 * self[f] / total, f }' "$scratch/folded.txt" |
  sort -rn | head -n 15 || true # head closes the pipe early: not a failure
