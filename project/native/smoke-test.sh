#!/usr/bin/env bash
# The native stack's smoke test (part of `make test`): `make
# start-observability` with a fresh run directory, every /readyz green, the
# broker answers, the two-step login flow works, Prometheus scrapes every
# service and answers the dashboard's queries, a second start is a no-op,
# and `make stop` leaves no service process (nor Prometheus) behind.
# Uses the dev profile so it reuses the test build.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export PROFILE=${SMOKE_PROFILE:-dev}
# Prometheus too (`make start-observability`), on its usual port.
export OBSERVABILITY=1
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/native-smoke.XXXXXX")
export RUN_DIR
passed=0
failed=0

check() { # NAME COMMAND...
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "PASS  $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
  fi
}

for port in $(for service in "${SERVICES[@]}"; do port_of "$service"; done) "$PROMETHEUS_PORT"; do
  if port_open 127.0.0.1 "$port"; then
    if [ -n "${CI:-}" ]; then
      die "port $port is taken: the smoke test needs the service ports (and Prometheus's) free"
    fi
    echo "SKIP  native stack smoke test: port $port is in use (a stack is running; 'make stop' it first)"
    exit 0
  fi
done

cleanup() {
  "$ROOT/project/native/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT

start_ok() { "$ROOT/project/native/start.sh" >"$RUN_DIR/start.out" 2>&1 || { cat "$RUN_DIR/start.out"; return 1; }; }

all_ready() {
  local service code ok=0
  for service in "${SERVICES[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$(port_of "$service")/readyz")
    [ "$code" = 200 ] || { echo "  $service /readyz answered $code"; ok=1; }
  done
  return $ok
}

broker_answers() {
  local body
  body=$(curl -s --max-time 5 -X POST http://127.0.0.1:8080/)
  [ "$body" = '{"error":false,"message":"Hit the broker"}' ] || { echo "  broker answered: $body"; return 1; }
}

page_served() {
  curl -s --max-time 5 http://127.0.0.1:8081/ | grep -q 'id="broker-btn"'
}

# The README's two steps: log in through the broker, then read the log with
# the token; without one the log is a 401. The key was made for this run
# directory and only its owner can read it.
two_step_flow() {
  local code answer token
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:8080/logs)
  [ "$code" = 401 ] || { echo "  GET /logs without a token answered $code"; return 1; }
  token=$(access_token http://127.0.0.1:8080)
  [ -n "$token" ] || { echo "  the login through the broker returned no access token"; return 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $token" http://127.0.0.1:8080/logs)
  [ "$code" = 200 ] || { echo "  GET /logs with the token answered $code"; return 1; }
  [ "$(stat -c %a "$RUN_DIR/secrets/token-key")" = 600 ] || { echo "  the token key is readable by others"; return 1; }
}

# A page on another site posting a form (text/plain, no preflight) to each
# service's main route, as in docs/security.md: every one answers 403 in
# the envelope, the mail relay included.
no_web_page_drives_a_service() {
  local service path answer
  for service in "${SERVICES[@]}"; do
    case $service in
      broker-service) path=/handle ;;
      authentication-service) path=/authenticate ;;
      logger-service) path=/log ;;
      mail-service) path=/send ;;
      *) path=/ ;;
    esac
    answer=$(curl -s --max-time 5 -w ' %{http_code}' -X POST "http://127.0.0.1:$(port_of "$service")$path" \
      -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' \
      -d '{"action":"mail","from":"a@evil.example","to":"victim@example.com","subject":"s","message":"m"}')
    case $answer in
      '{"error":true,"message":"requests from the origin http://evil.example are not allowed'*' 403') ;;
      *) echo "  $service $path answered: $answer"; return 1 ;;
    esac
  done
}

check_prometheus() { python3 "$ROOT/project/observability/check-prometheus.py" "http://127.0.0.1:$PROMETHEUS_PORT" "$@"; }

# Prometheus has scraped all six services, and each answered.
prometheus_scrapes_every_service() { check_prometheus targets "${#SERVICES[@]}" 30; }

# Each query of the committed Grafana dashboard answers data from the
# running stack (after some traffic and a few scrapes).
dashboard_queries_answer() {
  local i
  for i in 1 2 3; do
    curl -s -o /dev/null --max-time 5 -X POST http://127.0.0.1:8080/handle \
      -d "{\"action\":\"log\",\"transport\":\"amqp\",\"log\":{\"name\":\"smoke\",\"data\":\"$i\"}}"
  done
  # rate() over a minute needs two scrapes (5 s apart) after the traffic.
  sleep 12
  check_prometheus dashboard
}

pids() { cat "$RUN_DIR"/*.pid "$RUN_DIR"/infra/*.pid 2>/dev/null | sort; }

second_start_is_a_no_op() {
  local before after
  before=$(pids)
  start_ok || return 1
  after=$(pids)
  [ "$before" = "$after" ] && grep -q "already running" "$RUN_DIR/start.out"
}

stop_leaves_nothing() {
  local recorded service pid i alive=0
  recorded=$(pids)
  "$ROOT/project/native/stop.sh" >"$RUN_DIR/stop.out" 2>&1 || { cat "$RUN_DIR/stop.out"; return 1; }
  # A process that has let go of its command line is on its way out: give
  # it a moment. A zombie (state Z) has ended; only its parent has not
  # reaped it yet.
  running() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
  for pid in $recorded; do
    for ((i = 0; i < 20; i++)); do running "$pid" || break; sleep 0.25; done
    if running "$pid"; then
      echo "  pid $pid still runs: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
      alive=1
    fi
  done
  for service in "${SERVICES[@]}"; do
    if port_open 127.0.0.1 "$(port_of "$service")"; then
      echo "  $service port still open"
      alive=1
    fi
    [ -f "$RUN_DIR/$service.pid" ] && { echo "  $service.pid left behind"; alive=1; }
  done
  if port_open 127.0.0.1 "$PROMETHEUS_PORT"; then
    echo "  Prometheus port still open"
    alive=1
  fi
  return $alive
}

check "make start on a fresh run directory" start_ok
check "every /readyz answers 200" all_ready
check "POST / on the broker answers the envelope" broker_answers
check "the test page is served" page_served
check "log in, then read the log with the token" two_step_flow
check "a cross-site form post is a 403 on every service" no_web_page_drives_a_service
check "Prometheus scrapes all six services" prometheus_scrapes_every_service
check "every query of the Grafana dashboard answers data" dashboard_queries_answer
check "a second make start starts nothing new" second_start_is_a_no_op
check "make stop leaves no service process behind" stop_leaves_nothing

echo "native-stack: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
