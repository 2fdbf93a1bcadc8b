#!/usr/bin/env bash
# `make stop`: stops what `make start` started (services first, then the
# infrastructure it started), and nothing else.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
  service=${SERVICES[i]}
  # Whichever profile it was built with, the binary path ends in /<service>.
  stop_pid "$service" "$RUN_DIR/$service.pid" "/$service"
done

stop_pid Prometheus "$RUN_DIR/infra/prometheus.pid" prometheus
stop_pid "the mail catcher" "$RUN_DIR/infra/maildev.pid" maildev
stop_pid "the MongoDB-compatible server" "$RUN_DIR/infra/mongo.pid" secantusd-py

if [ -f "$RUN_DIR/infra/rabbitmq.started" ]; then
  say "stopping RabbitMQ"
  as_root rabbitmqctl stop >/dev/null 2>&1 || warn "rabbitmqctl stop failed"
  rm -f "$RUN_DIR/infra/rabbitmq.started"
fi
if [ -f "$RUN_DIR/infra/postgres.started" ]; then
  version=$(cat "$RUN_DIR/infra/postgres.started")
  say "stopping PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main stop || warn "pg_ctlcluster stop failed"
  rm -f "$RUN_DIR/infra/postgres.started"
fi
say "stopped"
