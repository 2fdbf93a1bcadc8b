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
if ! docker buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ] &&
  [ "$(command -v docker)" != /usr/bin/docker ]; then
  mkdir -p "$DOCKER_RUN_DIR/bin"
  ln -sf /usr/bin/docker "$DOCKER_RUN_DIR/bin/docker"
  PATH=$DOCKER_RUN_DIR/bin:$PATH
fi
export PATH DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1

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
  local label=$1 env_file=$2 ids=$3 needles=() key value id leaks
  for key in POSTGRES_PASSWORD MONGO_PASSWORD RABBITMQ_PASSWORD; do
    value=$(sed -n "s/^$key=//p" "$env_file" | tail -n 1)
    [ -n "$value" ] && needles+=(-e "$value")
  done
  [ ${#needles[@]} -gt 0 ] || die "$label: no password in $env_file to look for"
  # shellcheck disable=SC2086
  leaks=$(docker inspect --format '{{.Name}} {{range .Config.Env}}{{.}} {{end}}' $ids | grep -F "${needles[@]}" | cut -d' ' -f1 || true)
  [ -z "$leaks" ] || die "$label: a password is in the configuration of $leaks"
  for id in $ids; do
    docker inspect --format '{{.Config.Image}}' "$id" | grep -qE '/(broker|authentication|logger|mail|listener)-service:|/front-end:' || continue
    if docker exec "$id" cat /proc/1/environ | tr '\0' '\n' | grep -qF "${needles[@]}"; then
      die "$label: a password is in the environment of $(docker inspect --format '{{.Name}}' "$id")'s process"
    fi
  done
  say "$label: no password in any container's configuration or any service's environment"
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

# deployed_browser_test LABEL: the test page of the running stack in headless
# Chromium, through Caddy on port 80 (support/system-tests/tests/deployed.rs).
deployed_browser_test() {
  say "$1: the browser test through Caddy on http://localhost/"
  SYSTEM_URL=http://localhost/ MAIL_UI_URL=http://localhost:8025 \
    cargo test --quiet -p system-tests --test deployed -- --ignored
}
