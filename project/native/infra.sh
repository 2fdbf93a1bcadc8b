#!/usr/bin/env bash
# Starts whatever local infrastructure the native stack needs and is not yet
# running, installing it first when missing (docs/contracts.md §6):
#   PostgreSQL 127.0.0.1:5432 with a `users` database   (Debian package)
#   RabbitMQ   127.0.0.1:5672                           (Debian package)
#   MongoDB-compatible server 127.0.0.1:27017           (PyPI secantusdb)
#   mail catcher: SMTP 127.0.0.1:1025, web UI :8025     (npm maildev)
# What it starts is recorded under $RUN_DIR so that stop.sh stops exactly
# that and nothing else.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mkdir -p "$RUN_DIR/infra" "$INFRA_DIR"

pg_admin() {
  # Over TCP with the stack's password first (works with trust or password
  # auth), then as the postgres OS user over the socket (peer auth).
  PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtA "$@" 2>/dev/null ||
    as_root runuser -u postgres -- psql -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

ensure_postgres() {
  if ! port_open 127.0.0.1 5432; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    echo "$version" >"$RUN_DIR/infra/postgres.started"
    wait_port PostgreSQL 127.0.0.1 5432 60
    # A freshly installed server asks for passwords over TCP: give the
    # stack's role the password its DATABASE_URL carries.
    as_root runuser -u postgres -- psql -qc "ALTER USER $PG_USER PASSWORD '$PG_PASSWORD'" >/dev/null
  fi
  if [ "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'")" != 1 ]; then
    say "creating database $PG_DATABASE"
    pg_admin -c "CREATE DATABASE $PG_DATABASE" >/dev/null
  fi
  say "PostgreSQL ready on 127.0.0.1:5432 (database $PG_DATABASE)"
}

ensure_rabbitmq() {
  if ! port_open 127.0.0.1 5672; then
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached
    touch "$RUN_DIR/infra/rabbitmq.started"
    wait_port RabbitMQ 127.0.0.1 5672 120
  fi
  say "RabbitMQ ready on 127.0.0.1:5672"
}

install_mongo() {
  [ -x "$SECANTUSD" ] && return
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -m venv "$INFRA_DIR/venv" 2>/dev/null || {
    apt_install python3-venv
    python3 -m venv "$INFRA_DIR/venv"
  }
  say "installing secantusdb $SECANTUSDB_VERSION (MongoDB-compatible server)"
  "$INFRA_DIR/venv/bin/pip" install -q --disable-pip-version-check --pre "secantusdb==$SECANTUSDB_VERSION"
}

ensure_mongo() {
  if ! port_open 127.0.0.1 27017; then
    install_mongo
    local bin=$SECANTUSD
    mkdir -p "$INFRA_DIR/mongo-data"
    say "starting the MongoDB-compatible server"
    # --standalone: as a replica set its insert rate decays with every write.
    setsid nohup "$bin" --standalone --host 127.0.0.1 --port 27017 \
      --storage-path "$INFRA_DIR/mongo-data" --log-level WARNING \
      >>"$RUN_DIR/mongo.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/infra/mongo.pid"
    wait_port "the MongoDB-compatible server" 127.0.0.1 27017 60
  fi
  say "MongoDB ready on 127.0.0.1:27017"
}

install_mailcatcher() {
  if [ ! -x "$MAILDEV" ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    say "installing maildev $MAILDEV_VERSION (mail catcher)"
    npm install --prefix "$INFRA_DIR/npm" --no-audit --no-fund --silent "maildev@$MAILDEV_VERSION" >/dev/null
  fi
}

ensure_mailcatcher() {
  if ! port_open 127.0.0.1 1025; then
    install_mailcatcher
    local bin=$MAILDEV
    say "starting the mail catcher"
    setsid nohup "$bin" --smtp 1025 --web 8025 --ip 127.0.0.1 \
      >>"$RUN_DIR/maildev.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/infra/maildev.pid"
    wait_port "the mail catcher" 127.0.0.1 1025 60
    wait_port "the mail catcher's web UI" 127.0.0.1 8025 60
  fi
  say "mail catcher ready: SMTP 127.0.0.1:1025, web UI http://localhost:8025"
}

# Headless Chromium and its WebDriver, for the browser test.
ensure_browser() {
  if ! command -v chromedriver >/dev/null || ! [ -x /usr/bin/chromium ]; then
    apt_install chromium chromium-driver
  fi
  say "Chromium ready for the browser test"
}

for tool in curl timeout; do
  command -v "$tool" >/dev/null || apt_install curl coreutils
done

# With no arguments: everything the native stack needs, started. Otherwise
# the named steps only (the tests install the MongoDB-compatible server but
# start their own, on random ports).
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(postgres rabbitmq mongo mailcatcher)
for step in "${steps[@]}"; do
  case $step in
    postgres) ensure_postgres ;;
    rabbitmq) ensure_rabbitmq ;;
    mongo) ensure_mongo ;;
    mongo-install) install_mongo ;;
    mailcatcher) ensure_mailcatcher ;;
    mailcatcher-install) install_mailcatcher ;;
    browser) ensure_browser ;;
    *) die "unknown step $step (postgres, rabbitmq, mongo, mongo-install, mailcatcher, mailcatcher-install, browser)" ;;
  esac
done
