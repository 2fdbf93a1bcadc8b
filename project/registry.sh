#!/usr/bin/env bash
# A local image registry (`make registry`, `make registry-stop`): the
# distribution registry 2.8 from Debian's docker-registry package, run
# natively, the same HTTP API as the registry:2 image. Images pushed to
# localhost:5000/... are what the Swarm nodes pull (docs/deploy.md,
# "Registry").
#
#   project/registry.sh start    install when missing, start when nothing
#                                answers on the port, record its PID
#   project/registry.sh stop     stop the registry that `start` started
#
# Settings: REGISTRY_PORT (5000), REGISTRY_BIND (0.0.0.0: the test's Swarm
# nodes reach it from their own addresses; 127.0.0.1 keeps it to this
# machine), REGISTRY_DATA (.run/registry/data). Plain HTTP and no login:
# Docker talks plain HTTP to a registry on a loopback address without being
# told to; any other name must be listed in the engine's
# insecure-registries, or served over TLS (docs/deploy.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/native/common.sh"

port=${REGISTRY_PORT:-5000}
bind=${REGISTRY_BIND:-0.0.0.0}
dir=$RUN_DIR/registry
data=${REGISTRY_DATA:-$dir/data}
pidfile=$dir/registry.pid
mkdir -p "$dir" "$data"

answers() { curl -fsS --max-time 2 "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; }

start() {
  if answers; then
    say "registry: answering on localhost:$port"
    return
  fi
  command -v docker-registry >/dev/null || apt_install docker-registry
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $data
  delete:
    enabled: true
http:
  addr: $bind:$port
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  setsid nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local i
  for ((i = 0; i < 40; i++)); do
    answers && { say "registry: started on $bind:$port (pid $(cat "$pidfile"), data $data)"; return; }
    sleep 0.25
  done
  tail -n 20 "$dir/registry.log" >&2 || true
  die "the registry did not answer on localhost:$port within 10 s"
}

case ${1:-} in
  start) start ;;
  stop) stop_pid registry "$pidfile" docker-registry ;;
  *) die "usage: $0 start|stop" ;;
esac
