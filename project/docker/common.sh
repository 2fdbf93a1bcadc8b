# Shared settings and helpers of the Docker scripts (the engine, the compose
# and Swarm tests). Sourced, not run. Builds on the native scripts' helpers.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../native/common.sh"

DOCKER_RUN_DIR=${DOCKER_RUN_DIR:-$RUN_DIR/docker}
mkdir -p "$DOCKER_RUN_DIR"

# A docker CLI that builds with BuildKit. Debian's engine package brings the
# 20.10 CLI (/usr/bin/docker), which has BuildKit built in; a newer CLI found
# first on PATH without its buildx component cannot build. Then the 20.10 one
# goes first on PATH, for these scripts and the docker-compose they run.
# Chosen again once the engine is installed (test.sh): on a fresh machine
# /usr/bin/docker is not there yet when this file is sourced.
buildkit_cli() {
  if ! docker buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ] &&
    [ "$(command -v docker)" != /usr/bin/docker ]; then
    mkdir -p "$DOCKER_RUN_DIR/bin"
    ln -sf /usr/bin/docker "$DOCKER_RUN_DIR/bin/docker"
    PATH=$DOCKER_RUN_DIR/bin:$PATH
  fi
  export PATH DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
}
buildkit_cli

engine_up() { docker info >/dev/null 2>&1; }

# wait_for SECONDS COMMAND...: polls COMMAND every second; false if it never
# succeeds (the caller says what did not happen).
wait_for() {
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds; i++)); do
    "$@" && return 0
    sleep 1
  done
  return 1
}

# Elapsed seconds since $1 (a `date +%s` value).
since() { echo $(($(date +%s) - $1)); }

# A line of the test's timings, also kept for docs/deploy.md.
timing() {
  printf '%-40s %5ss\n' "$1" "$2" | tee -a "$DOCKER_RUN_DIR/timings.txt"
}

mk() { make --no-print-directory "$@"; }

# no_secret_exposed LABEL ENV_FILE CONTAINER_IDS: no password of ENV_FILE
# appears in any container's configuration (`docker inspect`), nor in the
# environment of a service's process (the six services read their secrets
# from files; the databases' own entrypoints, as upstream's, hand theirs to
# the server they start, so those are checked in `docker inspect` only).
no_secret_exposed() {
  local label=$1 env_file=$2 ids=$3 needles=() key value id leaks environ
  for key in POSTGRES_PASSWORD MONGO_PASSWORD RABBITMQ_PASSWORD AUTH_DB_PASSWORD LOGGER_DB_PASSWORD AMQP_PASSWORD; do
    value=$(env_value "$env_file" "$key")
    [ -n "$value" ] && needles+=(-e "$value")
  done
  [ ${#needles[@]} -gt 0 ] || die "$label: no password in $env_file to look for"
  # shellcheck disable=SC2086
  leaks=$(docker inspect --format '{{.Name}} {{range .Config.Env}}{{.}} {{end}}' $ids | grep -F "${needles[@]}" | cut -d' ' -f1 || true)
  [ -z "$leaks" ] || die "$label: a password is in the configuration of $leaks"
  for id in $ids; do
    docker inspect --format '{{.Config.Image}}' "$id" | grep -qE '/(broker|authentication|logger|mail|listener)-service:|/front-end:' || continue
    environ=$(proc_read "$id" environ | tr '\0' '\n')
    [ -n "$environ" ] || die "$label: could not read the environment of $(docker inspect --format '{{.Name}}' "$id")'s process"
    if grep -qF "${needles[@]}" <<<"$environ"; then
      die "$label: a password is in the environment of $(docker inspect --format '{{.Name}}' "$id")'s process"
    fi
  done
  say "$label: no password in any container's configuration or any service's environment"
}

# env_value ENV_FILE KEY: KEY's value in ENV_FILE (its last line for it).
env_value() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# least_privilege LABEL ENV_FILE CONTAINER_IDS: each service reaches its
# database as its own user, which can do no more than the service needs
# (docs/security.md, "Least privilege"), and no service holds a password of
# a database's administrator.
least_privilege() {
  local label=$1 env_file=$2 ids=$3 id pg='' mongo='' rabbit='' admins=() key out
  for id in $ids; do
    case $(docker inspect --format '{{.Config.Image}}' "$id") in
      postgres:*) pg=$id ;;
      mongo:*) mongo=$id ;;
      rabbitmq:*) rabbit=$id ;;
    esac
  done
  [ -n "$pg" ] && [ -n "$mongo" ] && [ -n "$rabbit" ] || die "$label: PostgreSQL, MongoDB or RabbitMQ is not among the containers"

  # PostgreSQL: every session on `users` is authentication's, a role with
  # no superuser, role or database rights, owning the service's table.
  sql() { docker exec "$pg" psql -U "$(env_value "$env_file" POSTGRES_USER)" -d users -Atc "$1"; }
  out=$(sql "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity
             WHERE datname = 'users' AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
  [ "$out" = authentication ] || die "$label: the sessions on PostgreSQL's users are of '$out', not of authentication alone"
  out=$(sql "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = 'authentication'")
  [ "$out" = f ] || die "$label: PostgreSQL's role authentication has rights beyond its database ('$out')"
  out=$(sql "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'")
  [ "$out" = authentication ] || die "$label: the table users is owned by '$out', not authentication"

  # MongoDB: the logger's user has readWrite on `logs` and nothing else;
  # with its password nothing outside `logs` can be read.
  out=$(docker exec "$mongo" mongosh --quiet \
    "mongodb://$(env_value "$env_file" MONGO_USER):$(env_value "$env_file" MONGO_PASSWORD)@127.0.0.1:27017/admin" \
    --eval 'EJSON.stringify(db.getSiblingDB("logs").getUser("logger").roles)')
  [ "$out" = '[{"role":"readWrite","db":"logs"}]' ] || die "$label: MongoDB's user logger has the roles $out"
  out=$(docker exec "$mongo" mongosh --quiet \
    "mongodb://logger:$(env_value "$env_file" LOGGER_DB_PASSWORD)@127.0.0.1:27017/logs" \
    --eval 'db.entries.estimatedDocumentCount(); try { db.getSiblingDB("admin").system.users.findOne(); print("read admin") } catch (e) { print("refused") }')
  [ "$out" = refused ] || die "$label: MongoDB's user logger may read the admin database ($out)"

  # RabbitMQ: every connection is the services' user on their vhost; that
  # user has no tag (no management or administrator rights) and rights on
  # that vhost only.
  rabbitmqctl() { docker exec "$rabbit" rabbitmqctl -q --no-table-headers "$@"; }
  # (The listeners may still be retrying their first connection when the
  # broker reports ready: wait for a connection to be there.)
  rabbit_connected() { [ -n "$(rabbitmqctl list_connections user vhost)" ]; }
  wait_for 30 rabbit_connected || true
  out=$(rabbitmqctl list_connections user vhost | sort -u | tr '\t' ' ')
  [ "$out" = "microservices microservices" ] || die "$label: RabbitMQ's connections are of: $out"
  out=$(rabbitmqctl list_users | awk '$1 == "microservices" {print $2}')
  [ "$out" = "[]" ] || die "$label: RabbitMQ's user microservices has the tags $out"
  out=$(rabbitmqctl list_user_permissions microservices | cut -f1 | tr '\n' ' ')
  [ "$out" = "microservices " ] || die "$label: RabbitMQ's user microservices has rights on the vhosts $out"

  no_admin_password "$label" "$env_file" "$ids"
  say "$label: each service on its own database user, none with more rights than it needs"
}

# no_admin_password LABEL ENV_FILE CONTAINER_IDS: no service's secrets hold
# a password of a database's administrator.
no_admin_password() {
  local label=$1 env_file=$2 ids=$3 admins=() key id secrets
  for key in POSTGRES_PASSWORD MONGO_PASSWORD RABBITMQ_PASSWORD; do
    admins+=(-e "$(env_value "$env_file" "$key")")
  done
  for id in $ids; do
    docker inspect --format '{{.Config.Image}}' "$id" | grep -qE '/(broker|authentication|logger|mail|listener)-service:|/front-end:' || continue
    # Only a service that names a secret file has secrets; those must be
    # read (a read that fails is a failed check, not a clean one).
    docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$id" | grep -q '_FILE=/run/secrets/' || continue
    secrets=$(proc_read "$id" 'root/run/secrets/*') ||
      die "$label: could not read the secrets of $(docker inspect --format '{{.Name}}' "$id")"
    if grep -qF "${admins[@]}" <<<"$secrets"; then
      die "$label: $(docker inspect --format '{{.Name}}' "$id") holds an administrator's password"
    fi
  done
}

# proc_read CONTAINER FILE: FILE (a path under /proc/<pid>/, a glob allowed)
# of the container's main process, read from this machine: the service
# images have no shell or cat to read it from inside. With PROC_NODE set
# (test-swarm.sh: DOCKER_HOST is that node's engine), read on that node
# (nodes.sh on_node), in whose PID namespace the engine reports the PID.
proc_read() {
  local pid
  pid=$(docker inspect --format '{{.State.Pid}}' "$1")
  if [ -n "${PROC_NODE:-}" ]; then
    on_node "$PROC_NODE" sh -c "cat /proc/$pid/$2"
  else
    sh -c "cat /proc/$pid/$2"
  fi
}

# first_deploy LABEL TARGET ENV_FILE WAIT WHAT: `make TARGET` on a machine
# without ENV_FILE (it must be created from .env.example), then WAIT 300
# (the scenario's wait for every container healthy), timed as WHAT.
first_deploy() {
  local label=$1 target=$2 env_file=$3 wait=$4 what=$5 started
  say "$label: make $target (fresh $env_file)"
  started=$(date +%s)
  mk "$target"
  [ -f "$env_file" ] || die "$label: make $target did not create $env_file from .env.example"
  "$wait" 300
  timing "$what" "$(since "$started")"
}

# cross_site_refused LABEL CONTAINER: from CONTAINER's network (the
# broker's, which reaches all six services by name; curl runs in the
# toolbox image TOOLBOX beside it, since the service images have none), a
# page on another site posting a form (text/plain, no preflight) to each
# service's main route: every one answers 403 in the envelope
# (docs/security.md).
TOOLBOX=${TOOLBOX:-microservices-test/toolbox}
cross_site_refused() {
  local label=$1 container=$2 target answer
  say "$label: a cross-site form post is a 403 on every service"
  for target in broker-service:8080/handle authentication-service:8082/authenticate \
    logger-service:8083/log mail-service:8084/send listener-service:8085/ front-end:8081/; do
    answer=$(docker run --rm --network "container:$container" "$TOOLBOX" curl -s --max-time 5 -w ' %{http_code}' -X POST "http://$target" \
      -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' \
      -d '{"from":"a@evil.example","to":"victim@example.com","subject":"s","message":"m"}')
    case $answer in
      '{"error":true,"message":"requests from the origin http://evil.example are not allowed'*' 403') ;;
      *) die "$label: POST http://$target from another site answered: $answer" ;;
    esac
  done
}

# deployed_browser_test LABEL [URL]: the test page of the running stack in
# headless Chromium, through Caddy on port 80 at URL (default
# http://localhost/), as a user opens it (support/system-tests/tests/deployed.rs).
deployed_browser_test() {
  local url=${2:-http://localhost/}
  say "$1: the browser test through Caddy on $url"
  SYSTEM_URL=$url MAIL_UI_URL=http://localhost:8025 \
    cargo test --quiet -p system-tests --test deployed -- --ignored
}

