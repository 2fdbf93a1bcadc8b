# Shared settings and helpers of the native-run scripts. Sourced, not run.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN_DIR=${RUN_DIR:-$ROOT/.run}
INFRA_DIR=${INFRA_DIR:-$ROOT/.infra}
# Cargo profile the services are built with: release (default) or dev.
PROFILE=${PROFILE:-release}
READY_TIMEOUT=${READY_TIMEOUT:-90}
# Prometheus of `make start-observability` (docs/observability.md).
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}

# In start order: dependencies first, the entry points last.
SERVICES=(logger-service authentication-service mail-service listener-service broker-service front-end)

# Native dependency versions, pinned.
SECANTUSDB_VERSION=0.7.0b3
MAILDEV_VERSION=2.2.1
SECANTUSD=$INFRA_DIR/venv/bin/secantusd-py
MAILDEV=$INFRA_DIR/npm/node_modules/.bin/maildev

# The PostgreSQL database the native stack uses, and the role that owns it
# (authentication-service's own, not the superuser's).
PG_DATABASE=users
PG_SERVICE_ROLE=authentication
# RabbitMQ: the stack's own vhost and user (no administrator tag).
AMQP_VHOST=microservices
AMQP_SERVICE_USER=microservices

# Secrets of the local infrastructure, kept beside it (git-ignored,
# owner-only): the services' passwords and the URLs carrying them, made
# once at random by infra.sh (docs/security.md).
SECRETS_DIR=$INFRA_DIR/secrets

# random_secret FILE: FILE, holding a random hex string, made once.
random_secret() {
  local file=$1
  if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    chmod 700 "$(dirname "$file")"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  echo "$file"
}

# secret_file FILE CONTENT: writes CONTENT to FILE, readable by its owner only.
secret_file() {
  mkdir -p "$(dirname "$1")"
  chmod 700 "$(dirname "$1")"
  (umask 077 && printf '%s' "$2" >"$1")
}

# The services read DATABASE_URL and AMQP_URL from the files infra.sh wrote
# (NAME_FILE), unless the caller names them (the fault suite's own
# infrastructure).
use_infra_secrets() {
  local name file
  for name in DATABASE_URL AMQP_URL; do
    file=$SECRETS_DIR/$(tr 'A-Z' 'a-z' <<<"$name")
    if [ -z "$(printenv "$name")" ] && [ -z "$(printenv "${name}_FILE")" ] && [ -s "$file" ]; then
      export "${name}_FILE=$file"
    fi
  done
}

# The access-token key the native stack's authentication-service, broker and
# logger share (docs/security.md): TOKEN_KEY or TOKEN_KEY_FILE when the
# caller sets one, else a random key made once per run directory and kept
# there, readable by its owner only, so tokens outlive a restart.
use_token_key() {
  [ -n "${TOKEN_KEY:-}" ] || [ -n "${TOKEN_KEY_FILE:-}" ] && return 0
  TOKEN_KEY_FILE=$(random_secret "$RUN_DIR/secrets/token-key")
  export TOKEN_KEY_FILE
}

# access_token URL: logs in as the seed user through the broker at URL
# (its /handle) and prints the access token (the README's first step).
access_token() {
  curl -fsS --max-time 10 -X POST "$1/handle" \
    -d '{"action":"auth","auth":{"email":"admin@example.com","password":"verysecret"}}' |
    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_of() {
  case $1 in
    broker-service) echo 8080 ;;
    front-end) echo 8081 ;;
    authentication-service) echo 8082 ;;
    logger-service) echo 8083 ;;
    mail-service) echo 8084 ;;
    listener-service) echo 8085 ;;
    *) die "unknown service $1" ;;
  esac
}

target_dir() {
  case $PROFILE in
    dev | debug) echo "$ROOT/target/debug" ;;
    *) echo "$ROOT/target/$PROFILE" ;;
  esac
}

cargo_profile() {
  case $PROFILE in
    debug) echo dev ;;
    *) echo "$PROFILE" ;;
  esac
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_port NAME HOST PORT SECONDS
wait_port() {
  local name=$1 host=$2 port=$3 seconds=$4 i
  for ((i = 0; i < seconds * 4; i++)); do
    port_open "$host" "$port" && return 0
    sleep 0.25
  done
  die "$name did not open $host:$port within ${seconds}s"
}

# pid_running PIDFILE TOKEN: true when PIDFILE names a live process whose
# command line contains TOKEN (so a recycled PID is never mistaken for ours).
pid_running() {
  local pidfile=$1 token=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$token"
}

# stop_pid NAME PIDFILE TOKEN: SIGTERM, wait up to 20 s, then SIGKILL.
stop_pid() {
  local name=$1 pidfile=$2 token=$3 pid i
  if pid_running "$pidfile" "$token"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do
      pid_running "$pidfile" "$token" || break
      sleep 0.25
    done
    if pid_running "$pidfile" "$token"; then
      warn "$name did not stop within 20s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

APT_UPDATED=
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
