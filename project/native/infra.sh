#!/usr/bin/env bash
# Starts whatever local infrastructure the native stack needs and is not yet
# running, installing it first when missing (docs/contracts.md §6):
#   PostgreSQL 127.0.0.1:5432, database `users` owned by the role
#              `authentication`                         (Debian package)
#   RabbitMQ   127.0.0.1:5672, vhost and user `microservices` (Debian package)
#   MongoDB-compatible server 127.0.0.1:27017           (PyPI secantusdb)
#   mail catcher: SMTP 127.0.0.1:1025, web UI :8025     (npm maildev)
# What it starts is recorded under $RUN_DIR so that stop.sh stops exactly
# that and nothing else. The services' passwords are random, made once, and
# kept under $INFRA_DIR/secrets with the URLs that carry them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mkdir -p "$RUN_DIR/infra" "$INFRA_DIR"

# The superuser's password, when infra.sh installed PostgreSQL itself and
# so gave it one; a server that was already running is reached as it is
# (trust or peer authentication).
PG_ADMIN_PASSWORD_FILE=$SECRETS_DIR/postgres-password

pg_admin() { pg_admin_on postgres "$@"; }

# pg_admin_on DATABASE ARGS...: psql as the superuser: over TCP first (with
# its password if it has one), then as the postgres OS user over the socket.
pg_admin_on() {
  local db=$1 password=
  shift
  [ -s "$PG_ADMIN_PASSWORD_FILE" ] && password=$(cat "$PG_ADMIN_PASSWORD_FILE")
  PGPASSWORD=$password psql -h 127.0.0.1 -U postgres -d "$db" -v ON_ERROR_STOP=1 -qtA "$@" 2>/dev/null ||
    as_root runuser -u postgres -- psql -d "$db" -v ON_ERROR_STOP=1 -qtA "$@"
}

ensure_postgres() {
  if ! port_open 127.0.0.1 5432; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
    local version password
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    echo "$version" >"$RUN_DIR/infra/postgres.started"
    wait_port PostgreSQL 127.0.0.1 5432 60
    # A freshly installed server asks for passwords over TCP: the superuser
    # gets a random one, which the tests read too.
    password=$(cat "$(random_secret "$PG_ADMIN_PASSWORD_FILE")")
    as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD '$password'" >/dev/null
    secret_file "$SECRETS_DIR/postgres-admin-url" "postgres://postgres:$password@127.0.0.1:5432/postgres"
  fi
  # The service's own role: it owns the database (so its migrations can
  # create the tables) and can do nothing else.
  local role=$PG_SERVICE_ROLE password
  password=$(cat "$(random_secret "$SECRETS_DIR/postgres-$role-password")")
  if [ "$(pg_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" != 1 ]; then
    say "creating the PostgreSQL role $role"
    pg_admin -c "CREATE ROLE $role LOGIN" >/dev/null
  fi
  pg_admin -c "ALTER ROLE $role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$password'" >/dev/null
  if [ "$(pg_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'")" != 1 ]; then
    say "creating database $PG_DATABASE"
    pg_admin -c "CREATE DATABASE $PG_DATABASE OWNER $role" >/dev/null
  fi
  pg_admin -c "ALTER DATABASE $PG_DATABASE OWNER TO $role" >/dev/null
  pg_admin -c "REVOKE ALL ON DATABASE $PG_DATABASE FROM PUBLIC" >/dev/null
  # Tables an earlier stack created as the superuser pass to the role.
  pg_admin_on "$PG_DATABASE" -c "DO \$\$ DECLARE t record; BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner <> '$role' LOOP
      EXECUTE format('ALTER TABLE public.%I OWNER TO $role', t.tablename);
    END LOOP; END \$\$" >/dev/null
  secret_file "$SECRETS_DIR/database_url" "postgres://$role:$password@127.0.0.1:5432/$PG_DATABASE"
  say "PostgreSQL ready on 127.0.0.1:5432 (database $PG_DATABASE, owned by the role $role)"
}

ensure_rabbitmq() {
  if ! port_open 127.0.0.1 5672; then
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached
    touch "$RUN_DIR/infra/rabbitmq.started"
    wait_port RabbitMQ 127.0.0.1 5672 120
  fi
  # The stack's own vhost and user: no administrator tag, rights on that
  # vhost only.
  local user=$AMQP_SERVICE_USER vhost=$AMQP_VHOST password
  password=$(cat "$(random_secret "$SECRETS_DIR/rabbitmq-$user-password")")
  as_root rabbitmqctl -q list_vhosts | grep -qx "$vhost" || as_root rabbitmqctl -q add_vhost "$vhost" >/dev/null
  if as_root rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$user"; then
    as_root rabbitmqctl -q change_password "$user" "$password" >/dev/null
  else
    as_root rabbitmqctl -q add_user "$user" "$password" >/dev/null
  fi
  as_root rabbitmqctl -q set_user_tags "$user" >/dev/null
  as_root rabbitmqctl -q set_permissions -p "$vhost" "$user" '.*' '.*' '.*' >/dev/null
  secret_file "$SECRETS_DIR/amqp_url" "amqp://$user:$password@127.0.0.1:5672/$vhost"
  say "RabbitMQ ready on 127.0.0.1:5672 (vhost $vhost, user $user)"
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

# Prometheus scraping every service of the native stack (Debian's package,
# our own configuration, data under $RUN_DIR): `make start-observability`.
ensure_prometheus() {
  if pid_running "$RUN_DIR/infra/prometheus.pid" prometheus; then
    say "Prometheus already running on http://localhost:$PROMETHEUS_PORT"
    return
  fi
  port_open 127.0.0.1 "$PROMETHEUS_PORT" &&
    die "port $PROMETHEUS_PORT is taken by another process; set PROMETHEUS_PORT to start Prometheus elsewhere"
  command -v prometheus >/dev/null || apt_install prometheus
  say "starting Prometheus"
  mkdir -p "$RUN_DIR/prometheus-data"
  setsid nohup prometheus --config.file="$ROOT/project/observability/prometheus.native.yml" \
    --storage.tsdb.path="$RUN_DIR/prometheus-data" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    >>"$RUN_DIR/prometheus.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/infra/prometheus.pid"
  wait_port Prometheus 127.0.0.1 "$PROMETHEUS_PORT" 60
  say "Prometheus ready on http://localhost:$PROMETHEUS_PORT (targets: /targets)"
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
    prometheus) ensure_prometheus ;;
    *) die "unknown step $step (postgres, rabbitmq, mongo, mongo-install, mailcatcher, mailcatcher-install, browser, prometheus)" ;;
  esac
done
