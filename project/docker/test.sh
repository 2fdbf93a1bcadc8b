#!/usr/bin/env bash
# The Docker path for real (`make test-docker`, part of `make test`):
#   the engine started if none runs (project/docker/engine.sh), the base and
#   infrastructure images pulled or built as stand-ins, the seven images
#   built from the repository's Dockerfiles and checked (non-root user, a
#   health check whose program the image contains), then the compose and
#   Swarm scenarios (test-compose.sh, test-swarm.sh).
#
#   project/docker/test.sh [images|compose|swarm ...]   default: all three
#
# SKIP_DOCKER_TESTS=1 skips it all, and says so; without it, a machine where
# Docker cannot run fails here with the reason. Timings go to
# .run/docker/timings.txt (docs/deploy.md quotes them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

# The counting rules of the Swarm test's load (project/docker/load.py):
# no Docker needed.
if ! out=$(python3 -m unittest discover -s project/docker -p 'test_*.py' 2>&1); then
  echo "$out" >&2
  die "the unit tests of project/docker/load.py failed"
fi
echo "load.py's counting rules: $(tail -n 3 <<<"$out" | head -n 1)"

if [ -n "${SKIP_DOCKER_TESTS:-}" ]; then
  echo "SKIP  the Docker tests (SKIP_DOCKER_TESTS is set)"
  exit 0
fi

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(images compose swarm)
prefix=${IMAGE_PREFIX:-microservices}
images=(broker-service authentication-service logger-service mail-service listener-service front-end caddy)

# The stacks publish these on the host (Caddy, the mail catcher's UI,
# RabbitMQ's management UI).
for port in 80 8025 15672; do
  if port_open 127.0.0.1 "$port"; then
    die "port $port is taken: the Docker tests publish the stack's ports 80, 8025 and 15672 (a native 'make start' holds 8025: 'make stop' it)"
  fi
done

project/docker/engine.sh start
buildkit_cli
# The browser test's Chromium and chromedriver.
project/native/infra.sh browser
trap 'project/docker/engine.sh stop' EXIT
: >"$DOCKER_RUN_DIR/timings.txt"

# check_image NAME: runs as a non-root user and has a health check whose
# program the image contains. A service image (its health check is its own
# binary: `<binary> healthcheck`) also has no shell and is at most
# MAX_SERVICE_IMAGE_MB (docs/deploy.md, "Images").
MAX_SERVICE_IMAGE_MB=40
check_image() {
  local image=$prefix/$1:${TAG:-latest} user program entry out bytes
  user=$(docker image inspect --format '{{.Config.User}}' "$image")
  [[ -n $user && ! $user =~ ^(0|root)(:|$) ]] || die "$image runs as root (USER '$user')"
  program=$(docker image inspect --format '{{with .Config.Healthcheck}}{{index .Test 1}}{{end}}' "$image")
  [ -n "$program" ] || die "$image has no health check"
  entry=$(docker image inspect --format '{{with .Config.Entrypoint}}{{index . 0}}{{end}}' "$image")
  if [ "$program" != "$entry" ]; then
    docker run --rm --read-only --entrypoint /bin/sh "$image" -c "command -v $program" >/dev/null \
      || die "$image: its health check runs $program, which the image does not contain"
    printf '  %-45s user %-12s health check: %s\n' "$image" "$user" "$program"
    return
  fi
  # Alone, with no server to ask (and none of the service's settings), the
  # binary's health check runs and fails with its own words.
  if out=$(docker run --rm --read-only --entrypoint "$program" "$image" healthcheck 2>&1); then
    die "$image: its health check passed with no service running"
  fi
  [[ $out == *"$1 healthcheck: "* ]] || die "$image: its health check $program healthcheck did not run: $out"
  if docker run --rm --read-only --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
    die "$image has a shell"
  fi
  bytes=$(docker image inspect --format '{{.Size}}' "$image")
  [ "$bytes" -le $((MAX_SERVICE_IMAGE_MB * 1000 * 1000)) ] \
    || die "$image is $((bytes / 1000 / 1000)) MB, over $MAX_SERVICE_IMAGE_MB MB"
  printf '  %-45s user %-12s health check: %s healthcheck, no shell, %s MB\n' \
    "$image" "$user" "$program" "$((bytes / 1000 / 1000))"
}

build_images() {
  local started image
  started=$(date +%s)
  make --no-print-directory stand-ins
  timing "stand-ins: present, pulled or built" "$(since "$started")"
  started=$(date +%s)
  make --no-print-directory build-images
  timing "make build-images (seven images)" "$(since "$started")"
  docker build -q -t microservices-test/toolbox -f project/docker/toolbox.dockerfile project/docker >/dev/null
  say "images: non-root, with a health check they can run; the services' without a shell, at most $MAX_SERVICE_IMAGE_MB MB"
  for image in "${images[@]}"; do
    check_image "$image"
  done
  docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$prefix/*" | sort >>"$DOCKER_RUN_DIR/timings.txt"
  # Kubernetes cannot run here, but the images its manifests name are these.
  local named
  named=$(sed -n 's/^ *image: *//p' project/k8s/*.yaml | sort -u)
  for image in $named; do
    docker image inspect "$image" >/dev/null 2>&1 || die "project/k8s names $image, which was not built"
  done
  say "images: the $(wc -w <<<"$named") images project/k8s names are the ones built here"
}

for step in "${steps[@]}"; do
  case $step in
    images) build_images ;;
    compose) project/docker/test-compose.sh ;;
    swarm) project/docker/test-swarm.sh ;;
    *) die "unknown step $step (images, compose, swarm)" ;;
  esac
done
say "Docker tests passed; timings in $DOCKER_RUN_DIR/timings.txt"
cat "$DOCKER_RUN_DIR/timings.txt"
