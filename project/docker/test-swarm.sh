#!/usr/bin/env bash
# The Swarm deployment end to end (part of `make test-docker`):
#   1. `docker swarm init` when this engine is in no swarm (and `docker swarm
#      leave` at the end only then);
#   2. `make swarm-deploy` with a fresh env file (the secrets are created
#      from it) and project/docker/swarm-test.yml laid over swarm.yml; every
#      service at its replica count, every task healthy;
#   3. no password in any task's `docker inspect` or any service's process
#      environment; each service on its own database user with no more
#      rights than it needs (least_privilege, common.sh); a cross-site form
#      post refused by every service (cross_site_refused); the browser test
#      through Caddy on http://localhost/;
#   4. a rolling update of the six services to a new image tag while load
#      loops send log requests through Caddy over every transport: not one
#      request fails;
#   5. an update of the broker to an image whose health check fails rolls
#      back by itself to the previous tasks;
#   6. `make swarm-rm` removes the stack: no container of it remains.
# The stack is named STACK (default microservices-test); its volumes are
# removed at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

stack=${STACK:-microservices-test}
env_file=$DOCKER_RUN_DIR/swarm.env
prefix=${IMAGE_PREFIX:-microservices}
services=(broker-service authentication-service logger-service mail-service listener-service front-end)
export STACK=$stack DEPLOY_ENV_FILE=$env_file IMAGE_PREFIX=$prefix
export SWARM_FILES=project/docker/swarm-test.yml SWARM_DEPLOY_FLAGS="--resolve-image never"
load_dir=$DOCKER_RUN_DIR/load

stack_containers() { docker ps -aq --filter "label=com.docker.stack.namespace=$stack"; }

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}'; }
initialised=false

cleanup() {
  stop_load
  docker stack rm "$stack" >/dev/null 2>&1 || true
  wait_for 60 stack_gone || true
  docker volume ls -q --filter "label=com.docker.stack.namespace=$stack" | xargs -r docker volume rm >/dev/null 2>&1 || true
  if $initialised; then
    docker swarm leave --force >/dev/null 2>&1 || true
  fi
  # The tags this test made.
  local service
  for service in "${services[@]}"; do
    docker rmi "$prefix/$service:update-test" >/dev/null 2>&1 || true
  done
  docker rmi "$prefix/broker-service:unhealthy-test" >/dev/null 2>&1 || true
  rm -f "$env_file"
}
trap cleanup EXIT

stack_gone() {
  [ -z "$(stack_containers)" ] &&
    [ -z "$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ]
}

# converged: every service of the stack at its replica count, every task's
# container healthy, and no update in progress.
converged() {
  local replicas ids states
  replicas=$(docker stack services "$stack" --format '{{.Replicas}}')
  [ "$(wc -l <<<"$replicas")" -eq 11 ] || return 1
  ! awk -F'[/ ]' '$1 != $2 { bad = 1 } END { exit !bad }' <<<"$replicas" || return 1
  ids=$(docker ps -q --filter "label=com.docker.stack.namespace=$stack")
  # shellcheck disable=SC2086
  states=$(docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids)
  ! grep -qv '^healthy$' <<<"$states"
}

show_stack() {
  docker stack services "$stack" >&2 || true
  docker stack ps --no-trunc "$stack" --format '{{.Name}} {{.Image}} {{.CurrentState}} {{.Error}}' >&2 || true
}

wait_converged() {
  wait_for "$1" converged || {
    show_stack
    die "swarm: the stack did not converge within $1 s"
  }
  # Swarm's health checks are liveness; the system is ready once the broker
  # reports every dependency ready (its /readyz names any that is not).
  wait_for 120 system_ready || {
    curl -sS --max-time 5 http://localhost/api/readyz >&2 || true
    die "swarm: the broker did not report every dependency ready within 120 s"
  }
}

system_ready() { curl -fsS --max-time 5 http://localhost/api/readyz 2>/dev/null | grep -q '"message":"ready"'; }

update_state() { docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${stack}_$1"; }
service_image() { docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${stack}_$1"; }

# updated TAG: the six services' specs name TAG and their updates completed.
updated() {
  local service
  for service in "${services[@]}"; do
    [[ $(service_image "$service") == "$prefix/$service:$1"* ]] || return 1
    [ "$(update_state "$service")" = completed ] || return 1
  done
}

# Load: four loops, one per transport, each sends log requests named
# NAME-<transport> (default rolling-update) through Caddy one after the
# other, each with its own data ("under load <n>"), and writes every
# answer's status code (000: none).
start_load() {
  local transport
  load_name=${1:-rolling-update}
  rm -rf "$load_dir"
  mkdir -p "$load_dir"
  load_started=$(date +%s)
  for transport in rpc http grpc amqp; do
    (
      n=0
      while [ ! -f "$load_dir/stop" ]; do
        n=$((n + 1))
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -X POST http://localhost/api/handle \
          -d "{\"action\":\"log\",\"transport\":\"$transport\",\"log\":{\"name\":\"$load_name-$transport\",\"data\":\"under load $n\"}}" \
          >>"$load_dir/$transport" || true
      done
    ) &
    echo $! >>"$load_dir/pids"
  done
}

# stop_load: each loop ends after its request in flight has its answer
# (at most curl's 10 s), so every request sent is in the counts.
stop_load() {
  [ -f "$load_dir/pids" ] || return 0
  touch "$load_dir/stop"
  local waited=0
  while [ "$waited" -lt 15 ] && xargs -r ps -p <"$load_dir/pids" >/dev/null 2>&1; do
    sleep 1
    waited=$((waited + 1))
  done
  xargs -r kill <"$load_dir/pids" 2>/dev/null || true
  rm -f "$load_dir/pids"
  wait 2>/dev/null || true
}

# stored_once: every acknowledged request of the last load is in MongoDB
# exactly once (by its data), per transport; the AMQP ones may take a while,
# so call it through wait_for. Writes the counts to $load_dir/stored-*.
stored_once() {
  local mongo transport acked counts ok=0
  mongo=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_mongo" | head -n 1)
  for transport in rpc http grpc amqp; do
    acked=$(grep -c '^202$' "$load_dir/$transport" || true)
    # "<entries> <distinct data>" of this load's name on this transport.
    counts=$(docker exec "$mongo" mongosh --quiet \
      "mongodb://logger:$(env_value "$env_file" LOGGER_DB_PASSWORD)@127.0.0.1:27017/logs" \
      --eval "const g = db.logs.aggregate([{\$match: {name: '$load_name-$transport'}},
                {\$group: {_id: '\$data', n: {\$sum: 1}}},
                {\$group: {_id: null, entries: {\$sum: '\$n'}, distinct: {\$sum: 1}}}]).toArray();
              print(g.length ? g[0].entries + ' ' + g[0].distinct : '0 0')") || return 1
    read -r entries distinct <<<"$counts"
    echo "  $transport: $acked acknowledged, $distinct stored, $((acked - distinct)) lost, $((entries - distinct)) duplicated" \
      >"$load_dir/stored-$transport"
    { [ "$entries" = "$acked" ] && [ "$distinct" = "$acked" ]; } || ok=1
  done
  return "$ok"
}

# load_report: the request count and failures per transport; false on any
# failure or on a transport that sent nothing.
load_report() {
  local transport sent failed ok=0
  for transport in rpc http grpc amqp; do
    sent=$(wc -l <"$load_dir/$transport")
    failed=$(grep -cv '^202$' "$load_dir/$transport" || true)
    echo "  $transport: $sent requests, $failed failed" | tee -a "$DOCKER_RUN_DIR/timings.txt"
    if [ "$failed" -gt 0 ]; then
      echo "  status codes of the failures: $(grep -v '^202$' "$load_dir/$transport" | sort | uniq -c | tr -s ' \n' ' ')"
    fi
    { [ "$sent" -gt 0 ] && [ "$failed" -eq 0 ]; } || ok=1
  done
  return $ok
}

# failure_logs SECONDS: the warnings and errors of the services that carry
# a log request, over the last SECONDS (the whole load, from start_load), so
# a failed load loop is explained by the test's output alone: a broker's
# "a dependency failed" quotes the logger's own words.
failure_logs() {
  local service
  for service in broker-service logger-service listener-service; do
    echo "  warnings and errors of $service in the last $1 s:"
    timeout 20 docker service logs --raw --since "${1}s" "${stack}_$service" 2>&1 |
      grep -E '"level":"(WARN|ERROR)"' | tail -n 15 | sed 's/^/    /' || true
  done
}

rm -f "$env_file"
if [ "$(swarm_state)" != active ]; then
  addr=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  say "swarm: docker swarm init --advertise-addr ${addr:-default}"
  docker swarm init ${addr:+--advertise-addr "$addr"} >/dev/null
  initialised=true
fi

first_deploy "swarm (stack $stack)" swarm-deploy "$env_file" wait_converged \
  "swarm: make swarm-deploy to every task healthy"

no_secret_exposed swarm "$env_file" "$(stack_containers)"
least_privilege swarm "$env_file" "$(stack_containers)"
cross_site_refused swarm \
  "$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_broker-service" | head -n 1)"
deployed_browser_test swarm

# Scaled out: every task of each scaled service serves its share of the
# calls on every transport (docs/deploy.md, "Balancing"); then the logger
# scaled up and down under load, failing no request and losing no entry.
say "swarm: scaled out (logger 3, authentication 2, mail 2, listener 2): every task serves its share"
docker service scale -d "${stack}_logger-service=3" "${stack}_authentication-service=2" \
  "${stack}_mail-service=2" "${stack}_listener-service=2" >/dev/null
wait_for 180 converged || { show_stack; die "swarm: the scaled stack did not converge within 180 s"; }
# Every caller resolves the names again within 5 s.
sleep 6
python3 project/docker/spread.py "$stack" 1500 300 | tee -a "$DOCKER_RUN_DIR/timings.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || { failure_logs 120; die "swarm: the calls are not spread over the tasks"; }

logger_tasks() { docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_logger-service" | sort; }
# serves_every_transport CONTAINER: its logger has served a tarpc, a gRPC
# and an HTTP log call.
serves_every_transport() {
  local metrics route
  metrics=$(nsenter -t "$(docker inspect --format '{{.State.Pid}}' "$1")" -n \
    curl -fsS --max-time 5 http://127.0.0.1:8083/metrics) || return 1
  for route in 'transport="tarpc",route="log_info"' 'transport="grpc",route="WriteLog"' 'transport="http",route="/log"'; do
    grep -q "^server_requests_total{$route,outcome=\"ok\"} [1-9]" <<<"$metrics" || return 1
  done
}
say "swarm: the logger scaled to 4, then to 2, under load"
before=$(logger_tasks)
start_load scale
sleep 3
docker service scale -d "${stack}_logger-service=4" >/dev/null
wait_for 60 converged || { stop_load; show_stack; die "swarm: the logger did not reach 4 tasks"; }
added=$(comm -13 <(echo "$before") <(logger_tasks))
[ -n "$added" ] || { stop_load; die "swarm: no new logger task"; }
started=$(date +%s)
wait_for 15 serves_every_transport "$added" || {
  stop_load
  die "swarm: the new logger task served no call on some transport within 15 s of being healthy"
}
timing "swarm: a new logger task serving every transport, after healthy" "$(since "$started")"
docker service scale -d "${stack}_logger-service=2" >/dev/null
wait_for 60 converged || { stop_load; show_stack; die "swarm: the logger did not come down to 2 tasks"; }
sleep 8
stop_load
load_report || {
  failure_logs "$(since "$load_started")"
  show_stack
  die "swarm: requests failed while the logger scaled"
}
wait_for 60 stored_once || {
  cat "$load_dir"/stored-*
  die "swarm: acknowledged entries are missing or stored twice after the logger scaled"
}
cat "$load_dir"/stored-* | tee -a "$DOCKER_RUN_DIR/timings.txt"

# The same images under a new tag: Swarm rolls every task over to it.
say "swarm: rolling update of the six services to TAG=update-test under load"
for service in "${services[@]}"; do
  docker tag "$prefix/$service:latest" "$prefix/$service:update-test"
done
start_load
sleep 3
started=$(date +%s)
TAG=update-test mk swarm-deploy
wait_for 600 updated update-test || {
  show_stack
  die "swarm: the update to update-test did not complete within 600 s"
}
timing "swarm: rolling update of six services" "$(since "$started")"
sleep 3
stop_load
load_report || {
  failure_logs "$(since "$load_started")"
  show_stack
  die "swarm: requests failed during the rolling update"
}
wait_for 60 stored_once || {
  cat "$load_dir"/stored-*
  die "swarm: acknowledged entries are missing or stored twice after the rolling update"
}
cat "$load_dir"/stored-* | tee -a "$DOCKER_RUN_DIR/timings.txt"
wait_converged 120

say "swarm: an update to an image whose health check fails rolls back"
# The broker admitting no connection (MAX_CONNECTIONS=0 closes each one it
# accepts): it runs, but its health check never gets an answer.
printf 'FROM %s\nENV MAX_CONNECTIONS=0\n' "$prefix/broker-service:update-test" |
  docker build -q -t "$prefix/broker-service:unhealthy-test" - >/dev/null
started=$(date +%s)
docker service update --detach --no-resolve-image --image "$prefix/broker-service:unhealthy-test" "${stack}_broker-service" >/dev/null
rolled_back() { [ "$(update_state broker-service)" = rollback_completed ]; }
wait_for 600 rolled_back || {
  show_stack
  die "swarm: the broker update to an unhealthy image did not roll back within 600 s"
}
timing "swarm: unhealthy update detected and rolled back" "$(since "$started")"
[[ $(service_image broker-service) == "$prefix/broker-service:update-test"* ]] \
  || die "swarm: after the rollback the broker runs $(service_image broker-service)"
wait_converged 120
running=$(docker ps --filter "label=com.docker.swarm.service.name=${stack}_broker-service" --format '{{.Image}}' | sort -u)
[ "$running" = "$prefix/broker-service:update-test" ] || die "swarm: broker tasks run $running after the rollback"
curl -fsS --max-time 10 -X POST http://localhost/api/ >/dev/null || die "swarm: the broker does not answer after the rollback"

say "swarm: make swarm-rm removes the stack"
mk swarm-rm
wait_for 120 stack_gone || die "swarm: containers or networks remain after make swarm-rm"
say "swarm: passed"
