#!/usr/bin/env bash
# `make test-faults` (part of `make test`): the fault suite
# (docs/reliability.md). Starts the native stack in the dev profile with a
# fresh run directory and infrastructure of its own where a fault needs it:
# a MongoDB-compatible server, a mail catcher and a PostgreSQL cluster on
# free ports, and a RabbitMQ vhost of its own (RabbitMQ's `stop_app` still
# stops the node for everyone: nothing else may use RabbitMQ meanwhile).
# Then `fault-suite` (support/fault-suite) runs every scenario, and what was started is stopped.
# FAULTS=name,name runs only those scenarios; the table of the run is
# written to $RUN_DIR/faults.md and printed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/native/common.sh"

# Helpers the scenarios call back into (the environment below is inherited).
case ${1:-} in
  start-mongo)
    setsid nohup "$SECANTUSD" --standalone --host 127.0.0.1 --port "$FAULT_MONGO_PORT" \
      --storage-path "$RUN_DIR/mongo" --log-level WARNING >>"$RUN_DIR/mongo.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/mongo.pid"
    wait_port "the MongoDB-compatible server" 127.0.0.1 "$FAULT_MONGO_PORT" 60
    exit 0 ;;
  start-smtp)
    setsid nohup "$MAILDEV" --smtp "$FAULT_SMTP_PORT" --web "$FAULT_MAILDEV_PORT" --ip 127.0.0.1 \
      >>"$RUN_DIR/maildev.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/maildev.pid"
    wait_port "the mail catcher" 127.0.0.1 "$FAULT_SMTP_PORT" 60
    wait_port "the mail catcher's web UI" 127.0.0.1 "$FAULT_MAILDEV_PORT" 60
    exit 0 ;;
  stop-smtp)
    stop_pid "the mail catcher" "$RUN_DIR/maildev.pid" maildev >/dev/null
    exit 0 ;;
  postgres)
    # postgres start|stop on the suite's own cluster.
    pg_ctl=$PG_BIN/pg_ctl
    if [ "$(id -u)" -eq 0 ]; then pg_ctl="runuser -u postgres -- $pg_ctl"; fi
    case $2 in
      start) $pg_ctl -D "$RUN_DIR/pg/data" -l "$RUN_DIR/pg/log" -w \
        -o "-p $FAULT_PG_PORT -k $RUN_DIR/pg -c listen_addresses=127.0.0.1" start >/dev/null ;;
      stop) $pg_ctl -D "$RUN_DIR/pg/data" -m fast -w stop >/dev/null ;;
    esac
    exit 0 ;;
  start-logger)
    STACK_INFRA=external "$ROOT/project/native/start.sh" >/dev/null
    exit 0 ;;
  "") ;;
  *) die "unknown helper $1" ;;
esac

export PROFILE=${FAULTS_PROFILE:-dev}
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/faults.XXXXXX")
chmod 755 "$RUN_DIR" # the postgres user runs its cluster in here
export RUN_DIR
for service in "${SERVICES[@]}"; do
  port=$(port_of "$service")
  port_open 127.0.0.1 "$port" && die "port $port is taken: stop the running stack first (make stop)"
done
# 1,000 slow clients and the load need more descriptors than the usual 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

"$ROOT/project/native/infra.sh" postgres rabbitmq mongo-install mailcatcher-install

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
FAULT_MONGO_PORT=$(free_port)
FAULT_SMTP_PORT=$(free_port)
FAULT_MAILDEV_PORT=$(free_port)
FAULT_PG_PORT=$(free_port)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
VHOST=faults-$$
export FAULT_MONGO_PORT FAULT_SMTP_PORT FAULT_MAILDEV_PORT FAULT_PG_PORT PG_BIN

self=$ROOT/project/faults.sh
cleanup() {
  set +e
  "$ROOT/project/native/stop.sh" >/dev/null
  "$self" stop-smtp
  kill -CONT "$(cat "$RUN_DIR/mongo.pid" 2>/dev/null)" 2>/dev/null
  stop_pid "the MongoDB-compatible server" "$RUN_DIR/mongo.pid" secantusd-py >/dev/null
  [ -f "$RUN_DIR/pg/data/postmaster.pid" ] && "$self" postgres stop
  as_root rabbitmqctl -q start_app >/dev/null 2>&1
  as_root rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1
}
trap cleanup EXIT

say "the suite's own infrastructure"
"$self" start-mongo
"$self" start-smtp
mkdir -p "$RUN_DIR/pg"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$RUN_DIR/pg"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$RUN_DIR/pg/data" -A trust -U postgres >/dev/null
else
  "$PG_BIN/initdb" -D "$RUN_DIR/pg/data" -A trust -U postgres >/dev/null
fi
"$self" postgres start
psql -h 127.0.0.1 -p "$FAULT_PG_PORT" -U postgres -qc "CREATE DATABASE users" >/dev/null
as_root rabbitmqctl -q add_vhost "$VHOST" >/dev/null
as_root rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null

export MONGO_URL=mongodb://127.0.0.1:$FAULT_MONGO_PORT
export DATABASE_URL=postgres://postgres@127.0.0.1:$FAULT_PG_PORT/users
export AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$VHOST
export MAIL_PORT=$FAULT_SMTP_PORT
export MAILDEV_URL=http://127.0.0.1:$FAULT_MAILDEV_PORT
# A failed call must be answered within the suite's 5 s: the broker gives
# up on a service after 4 s here (5 s by default, contracts.md).
export UPSTREAM_TIMEOUT_SECS=4
# The load comes from one client, and counts every answer: no per-client
# limit on its logins and mails (docs/security.md).
export LOGIN_LIMIT_PER_MINUTE=0 MAIL_LIMIT_PER_MINUTE=0
use_token_key
export RUST_LOG=${RUST_LOG:-warn}
STACK_INFRA=external "$ROOT/project/native/start.sh"

as_root_prefix=
[ "$(id -u)" -eq 0 ] || as_root_prefix=sudo
export FAULT_KILL_LOGGER="kill -KILL \$(cat $RUN_DIR/logger-service.pid)"
export FAULT_START_LOGGER="$self start-logger"
export FAULT_FREEZE_MONGO="kill -STOP \$(cat $RUN_DIR/mongo.pid)"
export FAULT_THAW_MONGO="kill -CONT \$(cat $RUN_DIR/mongo.pid)"
export FAULT_STOP_RABBITMQ="$as_root_prefix rabbitmqctl -q stop_app"
export FAULT_START_RABBITMQ="$as_root_prefix rabbitmqctl -q start_app"
export FAULT_STOP_POSTGRES="$self postgres stop"
export FAULT_START_POSTGRES="$self postgres start"
export FAULT_STOP_SMTP="$self stop-smtp"
export FAULT_START_SMTP="$self start-smtp"
export FAULTS_OUT=$RUN_DIR/faults.md

say "building the load generator"
(cd "$ROOT" && cargo build --quiet --profile "$(cargo_profile)" -p fault-suite)
say "running the fault suite"
"$(target_dir)/fault-suite"
say "the table is in $FAULTS_OUT"
