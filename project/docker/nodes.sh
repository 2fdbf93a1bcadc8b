#!/usr/bin/env bash
# Three Swarm nodes on one machine, for the Swarm test (test-swarm.sh):
# each a Docker engine of its own in a container (project/docker/node/),
# with its own address on the bridge network swarm-nodes (172.30.0.11-13),
# its own /var/lib/docker and its own swarm state. node-1 is the manager,
# node-2 and node-3 are workers; the machine's own engine only hosts them.
#
#   project/docker/nodes.sh up     the node image, the three engines,
#                                  `docker swarm init` on node-1 and
#                                  `docker swarm join` on the others
#   project/docker/nodes.sh down   the nodes, their volumes and network
#
# Why containers and not this engine plus two more: measured here
# (docs/deploy.md, "Three nodes on one machine"), an overlay network
# between this machine's own engine and an engine in a container carries
# no traffic (the VXLAN packets arrive and are never decapsulated), while
# between two engines in containers it works. A node container cannot be
# --privileged (this kernel's capability bounding set lacks
# CAP_SYS_RESOURCE, which --privileged asks for): it gets every other
# capability, no seccomp or AppArmor profile, every device, and the host's
# cgroup hierarchy.
#
# The nodes pull from the registry on this machine (project/registry.sh)
# under the name localhost:5000, as this machine pushes to it: each node
# forwards its own localhost:5000 there (node-entrypoint.sh). node-1
# publishes the stack's ports 80, 8025 and 15672 on this machine, and its
# engine's socket is $DOCKER_RUN_DIR/nodes/node-1/docker.sock
# (DOCKER_HOST=unix://... runs the docker CLI against the manager, as
# DOCKER_HOST=ssh://manager would with real servers).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Each node is a Docker engine in a container of this machine's engine.
NODES=(node-1 node-2 node-3)
NODE_IMAGE=microservices-test/node
NODES_GATEWAY=172.30.0.1
HOST_DOCKER_HOST=${HOST_DOCKER_HOST:-${DOCKER_HOST:-unix:///var/run/docker.sock}}

# host_docker ARGS...: the docker CLI against this machine's engine (which
# builds the images and hosts the nodes), whatever DOCKER_HOST says.
host_docker() { DOCKER_HOST=$HOST_DOCKER_HOST docker "$@"; }
node_container() { echo "swarm-$1"; }
node_addr() { echo "172.30.0.1${1#node-}"; }
# on_node NODE COMMAND...: COMMAND run on NODE (inside its container: its
# docker CLI, its PIDs, its tools: curl, nsenter).
on_node() {
  local node=$1
  shift
  host_docker exec -i "$(node_container "$node")" "$@"
}
# node_socket NODE: where NODE's engine answers on this machine.
node_socket() { echo "unix://$DOCKER_RUN_DIR/nodes/$1/docker.sock"; }
# node_docker NODE ARGS...: the docker CLI against NODE's engine.
node_docker() {
  local node=$1
  shift
  DOCKER_HOST=$(node_socket "$node") docker "$@"
}
# manager ARGS...: the docker CLI against the manager, node-1.
manager() { node_docker node-1 "$@"; }

up() {
  local node started
  started=$(date +%s)
  host_docker build -q -t "$NODE_IMAGE" -f "$ROOT/project/docker/node/node.dockerfile" "$ROOT/project/docker/node" >/dev/null
  host_docker network inspect swarm-nodes >/dev/null 2>&1 ||
    host_docker network create --subnet 172.30.0.0/24 --gateway "$NODES_GATEWAY" swarm-nodes >/dev/null
  for node in "${NODES[@]}"; do
    start_node "$node"
  done
  for node in "${NODES[@]}"; do
    wait_for 60 on_node "$node" docker info >/dev/null 2>&1 || {
      host_docker logs "$(node_container "$node")" 2>&1 | tail -n 20 >&2
      die "nodes: the engine of $node did not answer within 60 s"
    }
  done
  if [ "$(on_node node-1 docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    on_node node-1 docker swarm init --advertise-addr "$(node_addr node-1)" >/dev/null
  fi
  local token
  token=$(on_node node-1 docker swarm join-token -q worker)
  for node in node-2 node-3; do
    if [ "$(on_node "$node" docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
      on_node "$node" docker swarm join --token "$token" --advertise-addr "$(node_addr "$node")" \
        "$(node_addr node-1):2377" >/dev/null
    fi
  done
  wait_for 60 all_ready || { manager node ls >&2; die "nodes: not every node is Ready within 60 s"; }
  timing "nodes: three engines up, swarm joined" "$(since "$started")"
  manager node ls
}

all_ready() {
  [ "$(manager node ls --format '{{.Status}} {{.Availability}}' | grep -c '^Ready Active$')" -eq ${#NODES[@]} ]
}

start_node() {
  local node=$1 container publish=()
  container=$(node_container "$node")
  mkdir -p "$DOCKER_RUN_DIR/nodes/$node"
  if host_docker inspect "$container" >/dev/null 2>&1; then
    host_docker start "$container" >/dev/null
    return
  fi
  [ "$node" = node-1 ] && publish=(-p 80:80 -p 8025:8025 -p 15672:15672)
  host_docker run -d --name "$container" --hostname "$node" \
    --network swarm-nodes --ip "$(node_addr "$node")" "${publish[@]}" \
    --cap-add ALL --cap-drop SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' \
    -v /sys/fs/cgroup:/sys/fs/cgroup \
    -v "$container-data:/var/lib/docker" \
    -v "$DOCKER_RUN_DIR/nodes/$node:/run/node" \
    -e "REGISTRY=$NODES_GATEWAY:5000" \
    -e "DOCKERD_FLAGS=--host unix:///run/node/docker.sock" \
    --label microservices-test-node="$node" \
    "$NODE_IMAGE" >/dev/null
}

down() {
  local node container
  for node in "${NODES[@]}"; do
    container=$(node_container "$node")
    host_docker rm -f -v "$container" >/dev/null 2>&1 || true
    host_docker volume rm "$container-data" >/dev/null 2>&1 || true
    rm -rf "${DOCKER_RUN_DIR:?}/nodes/$node"
  done
  host_docker network rm swarm-nodes >/dev/null 2>&1 || true
}

# Sourced (test-swarm.sh), it only defines the helpers above.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-} in
    up) up ;;
    down) down ;;
    *) die "usage: $0 up|down" ;;
  esac
fi
