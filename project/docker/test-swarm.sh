#!/usr/bin/env bash
# The Swarm deployment end to end, on three nodes (part of `make
# test-docker`):
#   1. the registry (project/registry.sh) and three nodes, each an engine in
#      a container (project/docker/nodes.sh: node-1 the manager, node-2 and
#      node-3 workers); the images built here are pushed to the registry
#      (`make push-images`, IMAGE_PREFIX=localhost:5000/microservices) and
#      the nodes pull them; the infrastructure images (no registry serves
#      them here) are loaded into node-1, which carries the three database
#      labels;
#   2. `make swarm-deploy` against the manager with a fresh env file and
#      project/docker/swarm-test.yml laid over swarm.yml; every service at
#      its replica count, every task healthy, the stack's tasks on all three
#      nodes;
#   3. no password in any task's `docker inspect` or any service's process
#      environment; each service on its own database user with no more
#      rights than it needs (least_privilege, common.sh); a cross-site form
#      post refused by every service (cross_site_refused); the browser test
#      through Caddy on http://localhost/;
#   4. scaled out, every task serves its share (spread.py); the logger scaled
#      up and down under load;
#   5. under load on six paths (project/docker/load.py: a log over each
#      transport, a login, a mail), node-2 drained and node-3 killed: their
#      tasks run elsewhere, a failed request is a clear error in the
#      envelope, and every path answers again within RECOVER_LIMIT s (the
#      aim is 30 s: docs/deploy.md); the dead node's tasks run elsewhere
#      within 60 s; nothing acknowledged is lost or doubled; node-3 started
#      again rejoins;
#   6. a rolling update of the six services to a new image tag, pushed and
#      pulled, under the same load: every failure a clear error (the aim,
#      met on one node, is none: docs/deploy.md), nothing acknowledged lost
#      or doubled, and tasks land on node-3 again;
#   7. an update of the broker to an image whose health check fails rolls
#      back by itself to the previous tasks;
#   8. `make swarm-rm` removes the stack: no container of it remains.
# The stack is named STACK (default microservices-test); the nodes, their
# volumes and the tags this test pushed are removed at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/nodes.sh"
cd "$ROOT"

stack=${STACK:-microservices-test}
env_file=$DOCKER_RUN_DIR/swarm.env
# The images are built on this machine under IMAGE_PREFIX (test.sh's,
# default microservices), tagged for the registry and pushed; the nodes
# pull them from there.
local_prefix=${IMAGE_PREFIX:-microservices}
registry=localhost:5000
prefix=$registry/microservices
services=(broker-service authentication-service logger-service mail-service listener-service front-end)
infra_images=(postgres:17-bookworm mongo:7.0 rabbitmq:3.13-management axllent/mailpit:v1.27)
TOOLBOX=$registry/microservices-test/toolbox
export STACK=$stack DEPLOY_ENV_FILE=$env_file IMAGE_PREFIX=$prefix HOST_DOCKER_HOST
export SWARM_FILES=project/docker/swarm-test.yml
# For spread.py: each node's container and its engine.
SWARM_NODES=$(for node in "${NODES[@]}"; do printf '%s=%s ' "$(node_container "$node")" "$(node_socket "$node")"; done)
export SWARM_NODES
load_dir=$DOCKER_RUN_DIR/load
load_pid=
# A node drained or killed: how long after it a request may still fail
# (with a clear error). The aim is 30 s; measured here, a replica that no
# longer answers stays in a broker's rotation for up to 53 s after a drain
# (docs/deploy.md, "Running on several machines"), so the bound asserted is
# looser until a caller stops using a replica that times out.
RECOVER_LIMIT=${RECOVER_LIMIT:-120}

registry_started=false
cleanup() {
  stop_load || true
  down
  if $registry_started; then project/registry.sh stop >/dev/null 2>&1 || true; fi
  # The tags this test made on this machine.
  local image
  for image in "${services[@]}" caddy; do
    host_docker rmi "$prefix/$image:latest" "$prefix/$image:update-test" >/dev/null 2>&1 || true
  done
  host_docker rmi "$prefix/broker-service:unhealthy-test" "$TOOLBOX" >/dev/null 2>&1 || true
  rm -f "$env_file"
}
trap cleanup EXIT

# tasks_on NODE [FILTER...]: the stack's running containers on NODE (none
# when its engine does not answer).
tasks_on() {
  local node=$1
  shift
  node_docker "$node" ps -q --filter "label=com.docker.stack.namespace=$stack" "$@" 2>/dev/null || true
}
# service_tasks SERVICE: "NODE CONTAINER" of each running task of SERVICE.
service_tasks() {
  local node id
  for node in "${NODES[@]}"; do
    for id in $(tasks_on "$node" --filter "label=com.docker.swarm.service.name=${stack}_$1"); do
      echo "$node $id"
    done
  done
}

stack_gone() {
  local node
  for node in "${NODES[@]}"; do
    [ -z "$(node_docker "$node" ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] || return 1
    [ -z "$(node_docker "$node" network ls -q --filter "label=com.docker.stack.namespace=$stack")" ] || return 1
  done
}

# converged: every service of the stack has as many healthy containers as
# its replica count, on the nodes whose engines answer (a dead node's tasks
# still count as running to the manager until it returns), and no other
# container of the stack is running (none starting, none left over).
converged() {
  local desired node ids have=''
  desired=$(docker service ls --filter "label=com.docker.stack.namespace=$stack" \
    --format '{{.Name}} {{.Replicas}}' | sed 's|[0-9]*/\([0-9]*\).*|\1|')
  [ "$(wc -l <<<"$desired")" -eq 11 ] || return 1
  for node in "${NODES[@]}"; do
    ids=$(tasks_on "$node")
    [ -n "$ids" ] || continue
    # shellcheck disable=SC2086
    have+=$(node_docker "$node" inspect --format \
      '{{index .Config.Labels "com.docker.swarm.service.name"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids)$'\n'
  done
  ! grep -v -e ' healthy$' -e '^$' <<<"$have" | grep -q . || return 1
  [ "$(LC_ALL=C sort <<<"$desired")" = "$(grep -v '^$' <<<"$have" | cut -d' ' -f1 | LC_ALL=C sort | uniq -c | awk '{print $2, $1}')" ]
}

show_stack() {
  docker node ls >&2 || true
  docker stack services "$stack" >&2 || true
  docker stack ps --no-trunc "$stack" --format '{{.Name}} {{.Node}} {{.Image}} {{.CurrentState}} {{.Error}}' >&2 || true
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

# spread_over_nodes: every node runs a task of the stack, and each
# stateless service with more than one task runs on more than one node.
spread_over_nodes() {
  local node service nodes tasks count
  for node in "${NODES[@]}"; do
    [ -n "$(tasks_on "$node")" ] || { echo "  no task of the stack runs on $node"; return 1; }
  done
  for service in "${services[@]}"; do
    tasks=$(service_tasks "$service")
    count=$(grep -c . <<<"$tasks" || true)
    nodes=$(cut -d' ' -f1 <<<"$tasks" | sort -u | tr '\n' ' ')
    echo "  $service: $count tasks on $nodes"
    [ "$count" -lt 2 ] || [ "$(wc -w <<<"$nodes")" -ge 2 ] || return 1
  done
}

# Load (load.py): six loops through Caddy, one per path, named NAME.
start_load() {
  load_name=$1
  rm -rf "$load_dir"
  mkdir -p "$load_dir"
  load_started=$(date +%s)
  python3 project/docker/load.py run "$load_dir" "$load_name" >"$load_dir/run.log" 2>&1 &
  load_pid=$!
}

# stop_load: each loop ends after its request in flight has its answer, so
# every request sent is in the counts.
stop_load() {
  [ -n "$load_pid" ] || return 0
  touch "$load_dir/stop"
  local status=0
  wait "$load_pid" || status=$?
  load_pid=
  [ "$status" -eq 0 ] || { cat "$load_dir/run.log" >&2; return 1; }
}

# check_load WHAT [EVENT RECOVER]: the counts of the last load (load.py
# check), kept in the timings; dies with the services' warnings on a
# violation.
check_load() {
  local what=$1
  shift
  echo "  load during $what:" >>"$DOCKER_RUN_DIR/timings.txt"
  # (Not `... | tee; [ PIPESTATUS ]`: with pipefail, errexit ends the
  # script at the pipeline before the explanation.)
  if ! python3 project/docker/load.py check "$load_dir" "$load_name" "$env_file" "$@" | tee -a "$DOCKER_RUN_DIR/timings.txt"; then
    failure_logs "$(since "$load_started")"
    show_stack
    die "swarm: the load's counts break the rules during $what"
  fi
}

# failure_logs SECONDS: the warnings and errors of the services that carry
# a request, over the last SECONDS (the whole load, from start_load), so
# a failed load is explained by the test's output alone: a broker's
# "a dependency failed" quotes the logger's own words.
failure_logs() {
  local service
  for service in broker-service logger-service listener-service authentication-service mail-service; do
    echo "  warnings and errors of $service in the last $1 s:"
    timeout 20 docker service logs --raw --since "${1}s" "${stack}_$service" 2>&1 |
      grep -E '"level":"(WARN|ERROR)"' | tail -n 10 | sed 's/^/    /' || true
  done
}

# push TAG: the seven images, tagged for the registry, pushed with `make
# push-images`.
push() {
  local image
  for image in "${services[@]}" caddy; do
    host_docker tag "$local_prefix/$image:latest" "$prefix/$image:$1"
  done
  DOCKER_HOST=$HOST_DOCKER_HOST TAG=$1 mk push-images >/dev/null
}

rm -f "$env_file"
say "swarm: the registry on localhost:5000, three nodes, the images pushed"
started=$(date +%s)
if ! curl -fsS --max-time 2 "http://127.0.0.1:5000/v2/" >/dev/null 2>&1; then
  project/registry.sh start
  registry_started=true
fi
down
up
timing "swarm: registry and three nodes up" "$(since "$started")"
started=$(date +%s)
push latest
host_docker tag microservices-test/toolbox "$TOOLBOX"
host_docker push -q "$TOOLBOX" >/dev/null
timing "swarm: seven images pushed to the registry" "$(since "$started")"
started=$(date +%s)
host_docker save "${infra_images[@]}" | on_node node-1 docker load -q >/dev/null
timing "swarm: infrastructure images loaded into node-1" "$(since "$started")"
# From here the docker CLI talks to the manager.
export DOCKER_HOST
DOCKER_HOST=$(node_socket node-1)
docker node update --label-add postgres=true --label-add mongo=true --label-add rabbitmq=true node-1 >/dev/null

first_deploy "swarm (stack $stack, three nodes)" swarm-deploy "$env_file" wait_converged \
  "swarm: make swarm-deploy, images pulled, to every task healthy"
say "swarm: the tasks run on all three nodes, each scaled service's on two or more"
spread_over_nodes | tee -a "$DOCKER_RUN_DIR/timings.txt" || { show_stack; die "swarm: the stack is not spread over the three nodes"; }

for node in "${NODES[@]}"; do
  ids=$(node_docker "$node" ps -aq --filter "label=com.docker.stack.namespace=$stack")
  [ -n "$ids" ] || continue
  DOCKER_HOST=$(node_socket "$node") PROC_NODE=$node no_secret_exposed "swarm ($node)" "$env_file" "$ids"
  if [ "$node" = node-1 ]; then
    # The databases' node: their users and rights, and its services' secrets.
    DOCKER_HOST=$(node_socket "$node") PROC_NODE=$node least_privilege "swarm ($node)" "$env_file" "$ids"
  else
    DOCKER_HOST=$(node_socket "$node") PROC_NODE=$node no_admin_password "swarm ($node)" "$env_file" "$ids"
  fi
done
read -r broker_node broker < <(service_tasks broker-service | head -n 1)
node_docker "$broker_node" pull -q "$TOOLBOX" >/dev/null
DOCKER_HOST=$(node_socket "$broker_node") cross_site_refused "swarm (broker on $broker_node)" "$broker"
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
python3 project/docker/spread.py "$stack" 1500 300 | tee -a "$DOCKER_RUN_DIR/timings.txt" ||
  { failure_logs 120; die "swarm: the calls are not spread over the tasks"; }

logger_tasks() { service_tasks logger-service | sort; }
# serves_every_transport NODE CONTAINER: its logger has served a tarpc, a
# gRPC and an HTTP log call.
serves_every_transport() {
  local pid metrics route
  pid=$(node_docker "$1" inspect --format '{{.State.Pid}}' "$2")
  metrics=$(on_node "$1" nsenter -t "$pid" -n curl -fsS --max-time 5 http://127.0.0.1:8083/metrics) || return 1
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
added=$(comm -13 <(echo "$before") <(logger_tasks) | head -n 1)
[ -n "$added" ] || { stop_load; die "swarm: no new logger task"; }
started=$(date +%s)
# shellcheck disable=SC2086
wait_for 15 serves_every_transport $added || {
  stop_load
  die "swarm: the new logger task ($added) served no call on some transport within 15 s of being healthy"
}
timing "swarm: a new logger task serving every transport, after healthy" "$(since "$started")"
docker service scale -d "${stack}_logger-service=2" >/dev/null
wait_for 60 converged || { stop_load; show_stack; die "swarm: the logger did not come down to 2 tasks"; }
sleep 8
stop_load
check_load "the logger scaled to 4 and to 2"

# A node drained: Swarm stops its tasks and starts them elsewhere.
say "swarm: node-2 drained under load: its tasks move, failures are clear errors, all answer again within $RECOVER_LIMIT s"
start_load drain
sleep 5
event=$(date +%s)
docker node update --availability drain node-2 >/dev/null
node_idle() { [ -z "$(tasks_on "$1")" ]; }
wait_for 120 node_idle node-2 || { stop_load; show_stack; die "swarm: tasks still run on the drained node-2 after 120 s"; }
wait_for 180 converged || { stop_load; show_stack; die "swarm: the stack did not converge without node-2 within 180 s"; }
timing "swarm: node-2 drained, every task healthy elsewhere" "$(since "$event")"
sleep 10
stop_load
check_load "the drain of node-2" "$event" "$RECOVER_LIMIT"
docker node update --availability active node-2 >/dev/null

# A node dies: its engine killed at once, as a machine losing power.
say "swarm: node-3 killed under load: its tasks are rescheduled within 60 s, failures are clear errors, all answer again within $RECOVER_LIMIT s"
start_load node-down
sleep 5
event=$(date +%s)
host_docker kill "$(node_container node-3)" >/dev/null
node_status() { [ "$(docker node inspect --format '{{.Status.State}}' "$1")" = "$2" ]; }
wait_for 60 node_status node-3 down || { stop_load; show_stack; die "swarm: the manager did not see node-3 down within 60 s"; }
timing "swarm: node-3 killed, seen down by the manager" "$(since "$event")"
wait_for 120 converged || { stop_load; show_stack; die "swarm: the tasks of node-3 were not running elsewhere within 120 s"; }
rescheduled=$(since "$event")
timing "swarm: node-3 killed, every task healthy elsewhere" "$rescheduled"
[ "$rescheduled" -le 60 ] || { stop_load; die "swarm: rescheduling the tasks of the dead node-3 took $rescheduled s, over 60 s"; }
sleep 10
stop_load
check_load "the death of node-3" "$event" "$RECOVER_LIMIT"
say "swarm: node-3 started again rejoins"
started=$(date +%s)
host_docker start "$(node_container node-3)" >/dev/null
wait_for 120 node_status node-3 ready || { show_stack; die "swarm: node-3, started again, is not ready within 120 s"; }
timing "swarm: node-3 started again, ready" "$(since "$started")"

# The same images under a new tag, pushed: Swarm rolls every task over to
# it, the nodes pulling it from the registry.
say "swarm: rolling update of the six services to TAG=update-test under load"
push update-test
start_load rolling-update
sleep 3
started=$(date +%s)
TAG=update-test mk swarm-deploy
wait_for 600 updated update-test || {
  stop_load
  show_stack
  die "swarm: the update to update-test did not complete within 600 s"
}
timing "swarm: rolling update of six services" "$(since "$started")"
sleep 3
stop_load
# The aim is not one failure (so it was on one node); on three nodes the
# runs of 2026-12-07 saw a few clear errors while a task of MongoDB or a
# new logger task could not be reached (docs/deploy.md, "Three nodes on
# one machine"), so clear errors are let through here and counted.
check_load "the rolling update" "$started" 600
wait_converged 120
say "swarm: after the rolling update, tasks on all three nodes again"
spread_over_nodes | tee -a "$DOCKER_RUN_DIR/timings.txt" || { show_stack; die "swarm: after the rolling update the stack is not spread over the three nodes"; }

say "swarm: an update to an image whose health check fails rolls back"
# The broker admitting no connection (MAX_CONNECTIONS=0 closes each one it
# accepts): it runs, but its health check never gets an answer.
printf 'FROM %s\nENV MAX_CONNECTIONS=0\n' "$prefix/broker-service:update-test" |
  host_docker build -q -t "$prefix/broker-service:unhealthy-test" - >/dev/null
host_docker push -q "$prefix/broker-service:unhealthy-test" >/dev/null
started=$(date +%s)
docker service update --detach --image "$prefix/broker-service:unhealthy-test" "${stack}_broker-service" >/dev/null
rolled_back() { [ "$(update_state broker-service)" = rollback_completed ]; }
wait_for 600 rolled_back || {
  show_stack
  die "swarm: the broker update to an unhealthy image did not roll back within 600 s"
}
timing "swarm: unhealthy update detected and rolled back" "$(since "$started")"
[[ $(service_image broker-service) == "$prefix/broker-service:update-test"* ]] \
  || die "swarm: after the rollback the broker runs $(service_image broker-service)"
wait_converged 120
running=$(service_tasks broker-service | while read -r node id; do
  node_docker "$node" inspect --format '{{.Config.Image}}' "$id" </dev/null
done | sed 's/@sha256:.*//' | sort -u)
[ "$running" = "$prefix/broker-service:update-test" ] || die "swarm: broker tasks run $running after the rollback"
curl -fsS --max-time 10 -X POST http://localhost/api/ >/dev/null || die "swarm: the broker does not answer after the rollback"

say "swarm: make swarm-rm removes the stack"
mk swarm-rm
wait_for 120 stack_gone || die "swarm: containers or networks remain after make swarm-rm"
say "swarm: passed"
