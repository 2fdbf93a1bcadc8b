#!/usr/bin/env bash
# The Docker engine the Docker tests run on, handled like the native
# infrastructure: started only when none answers, and stopped only if this
# script started it.
#
#   project/docker/engine.sh start   install (Debian's docker.io,
#                                    docker-compose, debootstrap) when
#                                    missing, start dockerd when no engine
#                                    answers, record its PID
#   project/docker/engine.sh stop    stop the dockerd that `start` started
#
# Where Docker cannot run (not root, no package, the daemon does not come
# up), `start` fails with a message that says so.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pidfile=$DOCKER_RUN_DIR/dockerd.pid
logfile=$DOCKER_RUN_DIR/dockerd.log

cannot() {
  die "Docker cannot run here: $*. The Docker tests need a Docker engine; to skip them explicitly, set SKIP_DOCKER_TESTS=1"
}

start() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null || cannot "${missing[*]} missing and no root to install them"
    apt_install "${missing[@]}" || cannot "apt-get could not install ${missing[*]}"
  fi
  if engine_up; then
    say "Docker engine running ($(docker version --format '{{.Server.Version}}'))"
    return
  fi
  [ "$(id -u)" -eq 0 ] || cannot "no engine answers and dockerd must be started as root"
  say "starting dockerd (log: $logfile)"
  setsid nohup dockerd >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if ! wait_for 60 engine_up; then
    tail -n 20 "$logfile" >&2 || true
    cannot "dockerd did not answer within 60 s"
  fi
  say "Docker engine started ($(docker version --format '{{.Server.Version}}'), pid $(cat "$pidfile"))"
}

stop() {
  # dockerd takes its containerd down with it; containers still running
  # are stopped by the daemon first.
  if [ -f "$pidfile" ]; then
    stop_pid dockerd "$pidfile" dockerd
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 start|stop" ;;
esac
