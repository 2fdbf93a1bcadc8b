#!/bin/sh
# A test node's engine. The registry the nodes pull from is named
# localhost:5000 on every node, as on the machine that pushes to it: a
# forward from this node's own loopback to REGISTRY (host:port) makes the
# name mean the same registry here. Docker treats a loopback registry as
# insecure without configuration (docs/deploy.md, "Registry").
set -eu
if [ -n "${REGISTRY:-}" ]; then
  socat TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr "TCP:$REGISTRY" &
fi
# Started again after it was killed (the Swarm test's dead node), the
# container keeps the PID files of the engine that died, and dockerd and
# containerd refuse to start while they are there.
rm -rf /var/run/docker.pid /var/run/docker
exec dockerd --host unix:///var/run/docker.sock ${DOCKERD_FLAGS:-}
