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
exec dockerd --host unix:///var/run/docker.sock ${DOCKERD_FLAGS:-}
