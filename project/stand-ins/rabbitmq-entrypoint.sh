#!/bin/sh
# The rabbitmq stand-in's entrypoint: own the data dir, drop root, run the
# server (its script stops the node cleanly on SIGTERM).
set -eu

if [ "${1:-}" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
  # The node's own Erlang cookie, made now: the health check's CLI runs as
  # root and would otherwise make one that the server cannot read.
  cookie=/var/lib/rabbitmq/.erlang.cookie
  if [ ! -e "$cookie" ]; then
    (umask 077 && tr -dc A-Z </dev/urandom | head -c 20 >"$cookie")
  fi
  # A fresh named volume is root's.
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$@"
fi
exec "$@"
