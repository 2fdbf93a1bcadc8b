#!/usr/bin/env bash
# The compose deployment end to end (part of `make test-docker`):
#   1. `make up-build` with a fresh env file (created from .env.example),
#      then every container running and healthy;
#   2. no password of the env file in any container's `docker inspect` or
#      any service's process environment (the secrets are files), and each
#      service on its own database user with no more rights than it needs
#      (least_privilege, common.sh);
#   3. a cross-site form post refused by every service (cross_site_refused,
#      common.sh); the browser test through Caddy on http://localhost/ and on
#      http://127.0.0.1/ (the default origins, docs/security.md): every
#      button, every log entry, the mail in the catcher's published web UI;
#   4. with the broker stopped, Caddy answers 502 in the JSON envelope; a
#      log entry written before `make down` + `make up` is still listed
#      after (the volumes persist);
#   5. the profile observability's Prometheus (a stand-in built from Debian's
#      package where no registry answers) scrapes all six services, and
#      every query of the Grafana dashboard answers data from it;
#   6. `make down` leaves no container of the project.
# Runs as its own compose project (COMPOSE_PROJECT, default
# microservices-test) and removes its containers and volumes at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

project=${COMPOSE_PROJECT:-microservices-test}
env_file=$DOCKER_RUN_DIR/compose.env
# The test's own secrets, apart from those of a stack of the user's.
export DEPLOY_SECRETS_DIR=$DOCKER_RUN_DIR/compose-secrets
export COMPOSE_PROJECT=$project DEPLOY_ENV_FILE=$env_file
# The containers of the stack: six services, Caddy and four infrastructure.
expected_containers=11

compose() { SECRETS_DIR=$DEPLOY_SECRETS_DIR docker-compose --project-name "$project" --env-file "$env_file" -f project/docker-compose.yml "$@"; }
containers() { docker ps -aq --filter "label=com.docker.compose.project=$project"; }

cleanup() {
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$env_file" "$DEPLOY_SECRETS_DIR"
}
trap cleanup EXIT

# all_healthy: every container of the project running, and healthy.
all_healthy() {
  local ids states
  ids=$(containers)
  [ "$(wc -w <<<"$ids")" -eq "$expected_containers" ] || return 1
  # shellcheck disable=SC2086
  states=$(docker inspect --format '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' $ids)
  ! grep -qv '^running/healthy$' <<<"$states"
}

show_unhealthy() {
  local id
  for id in $(containers); do
    docker inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id"
  done
  compose logs --tail 20 >&2 || true
}

wait_healthy() {
  wait_for "${1:-300}" all_healthy || {
    show_unhealthy
    die "compose: not every container became healthy within ${1:-300}s"
  }
}

edge() { curl -fsS --max-time 10 "$@"; }

cleanup
first_deploy "compose (project $project)" up-build "$env_file" wait_healthy \
  "compose: make up-build, cached images, to all healthy"

no_secret_exposed compose "$env_file" "$(containers)"
least_privilege compose "$env_file" "$(containers)"
cross_site_refused compose \
  "$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=broker-service)"
deployed_browser_test compose http://localhost/
deployed_browser_test compose http://127.0.0.1/

say "compose: with no broker running, Caddy answers in the envelope"
broker=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=broker-service)
docker stop "$broker" >/dev/null
answer=$(curl -s --max-time 15 -w ' %{http_code} %{content_type}' -X POST http://localhost/api/handle -d '{"action":"log"}')
case $answer in
  '{"error":true,"message":"the edge proxy reached no replica of the service that answers /api/handle (502 Bad Gateway)"} 502 application/json') ;;
  *) die "compose: with the broker stopped, POST /api/handle answered: $answer" ;;
esac
docker start "$broker" >/dev/null
# The next request must find the broker serving again: wait for its health
# check and for the edge to pass a request through (a bare start is not
# yet listening, and the edge answers 502 until it is).
wait_healthy 120
edge_logs() { edge -o /dev/null -X POST http://localhost/api/handle -d '{"action":"log","transport":"http","log":{"name":"compose-test","data":"broker back"}}' 2>/dev/null; }
wait_for 60 edge_logs || die "compose: the broker, started again, does not answer through the edge within 60s"

say "compose: a log entry outlives make down + make up"
marker="persisted-$(date +%s)-$RANDOM"
edge -X POST http://localhost/api/handle \
  -d "{\"action\":\"log\",\"transport\":\"http\",\"log\":{\"name\":\"compose-test\",\"data\":\"$marker\"}}" >/dev/null
mk down
[ -z "$(containers)" ] || die "compose: containers remain after make down: $(containers)"
started=$(date +%s)
mk up
wait_healthy 300
timing "compose: make up (images built, volumes kept) to all healthy" "$(since "$started")"
token=$(access_token http://localhost/api)
[ -n "$token" ] || die "compose: the login through Caddy returned no access token"
edge -H "Authorization: Bearer $token" "http://localhost/api/logs?limit=100" | grep -qF "$marker" \
  || die "compose: the entry written before make down is gone after make up"

say "compose: the profile observability's Prometheus scrapes every service"
# Prometheus alone from the profile: Jaeger and Grafana have no stand-in on
# a machine without a registry (docs/deploy.md, "Observability").
mk stand-ins STAND_INS=prom/prometheus:v2.53.2
started=$(date +%s)
compose --profile observability up -d prometheus
prometheus() { python3 project/observability/check-prometheus.py http://localhost:9090 "$@"; }
prometheus targets 6 120 || die "compose: Prometheus does not see all six services up"
for transport in rpc http grpc amqp; do
  edge -X POST http://localhost/api/handle \
    -d "{\"action\":\"log\",\"transport\":\"$transport\",\"log\":{\"name\":\"compose-test\",\"data\":\"metrics\"}}" >/dev/null
done
# rate() over a minute needs two scrapes (5 s apart) after the traffic.
sleep 12
prometheus dashboard || die "compose: a query of the Grafana dashboard answers no data from Prometheus"
timing "compose: Prometheus up, every target scraped, every dashboard query answered" "$(since "$started")"

say "compose: make down leaves no container"
mk down
[ -z "$(containers)" ] || die "compose: containers remain after make down: $(containers)"
say "compose: passed"
