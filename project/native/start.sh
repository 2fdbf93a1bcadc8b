#!/usr/bin/env bash
# `make start`: brings up the whole system natively, in the background.
# Starts missing infrastructure (infra.sh), builds the services, starts each
# one that is not already running (log: $RUN_DIR/<service>.log, PID:
# $RUN_DIR/<service>.pid), waits until every /readyz is green and prints the
# URLs; with OBSERVABILITY=1 also Prometheus. Idempotent: what already runs
# is left alone. STACK_INFRA=external
# skips infra.sh: the services' environment then names infrastructure
# started elsewhere (the fault suite's own).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mkdir -p "$RUN_DIR"
[ "${STACK_INFRA:-}" = external ] || "$ROOT/project/native/infra.sh"

say "building the services (cargo profile $(cargo_profile))"
packages=()
for service in "${SERVICES[@]}"; do packages+=(-p "$service"); done
(cd "$ROOT" && cargo build --quiet --profile "$(cargo_profile)" --bins "${packages[@]}")

use_token_key
use_infra_secrets
# The trial user of the README and the test page (docs/security.md).
export SEED_ADMIN=${SEED_ADMIN:-true}
bin_dir=$(target_dir)
for service in "${SERVICES[@]}"; do
  bin=$bin_dir/$service
  pidfile=$RUN_DIR/$service.pid
  port=$(port_of "$service")
  if pid_running "$pidfile" "$bin"; then
    say "$service already running (pid $(cat "$pidfile"))"
    continue
  fi
  port_open 127.0.0.1 "$port" && die "port $port is taken by another process; $service cannot start"
  # Detached from this shell, so closing the terminal does not stop it.
  setsid nohup "$bin" >>"$RUN_DIR/$service.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  say "started $service (pid $!, port $port)"
done

# /readyz of each service, until all are green or the time is up.
say "waiting for every /readyz (up to ${READY_TIMEOUT}s)"
deadline=$((SECONDS + READY_TIMEOUT))
for service in "${SERVICES[@]}"; do
  url=http://127.0.0.1:$(port_of "$service")/readyz
  until curl -fsS -o /dev/null --max-time 3 "$url" 2>/dev/null; do
    if ! pid_running "$RUN_DIR/$service.pid" "$bin_dir/$service"; then
      tail -n 20 "$RUN_DIR/$service.log" >&2 || true
      die "$service exited; its log is $RUN_DIR/$service.log"
    fi
    if ((SECONDS >= deadline)); then
      curl -sS --max-time 3 "$url" >&2 || true
      echo >&2
      die "$service is not ready after ${READY_TIMEOUT}s; its log is $RUN_DIR/$service.log"
    fi
    sleep 0.5
  done
  say "$service ready"
done

# OBSERVABILITY=1 (`make start-observability`): Prometheus scraping every
# service. Traces go wherever OTEL_EXPORTER_OTLP_ENDPOINT points, when set.
observability=
if [ "${OBSERVABILITY:-}" = 1 ]; then
  "$ROOT/project/native/infra.sh" prometheus
  observability="  prometheus      http://localhost:$PROMETHEUS_PORT      (every service's /metrics)"
fi

cat <<EOM

The system is up.
  test page       http://localhost:8081
  broker          http://localhost:8080      (curl -X POST localhost:8080/)
  authentication  http://localhost:8082
  logger          http://localhost:8083      (tarpc 127.0.0.1:5001, gRPC 127.0.0.1:50001)
  mail            http://localhost:8084
  listener        http://localhost:8085/readyz
  mail catcher    http://localhost:8025
${observability:+$observability
}Logs and PIDs are in $RUN_DIR; stop everything with 'make stop'.
EOM
