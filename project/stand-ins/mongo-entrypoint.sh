#!/usr/bin/env bash
# The mongo stand-in's entrypoint: SecantusDB with the official image's
# MONGO_INITDB_* variables and init scripts.
set -eu

# VAR from $VAR or from the file named by $VAR_FILE (Docker secrets).
file_env() {
  local var=$1 file_var=${1}_FILE
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo "mongo: both $var and $file_var are set" >&2
    exit 1
  fi
  local value=${!var:-}
  if [ -n "${!file_var:-}" ]; then
    value=$(<"${!file_var}")
  fi
  export "$var=$value"
  unset "$file_var"
}

# `mongod` (the CMD) or bare options run the server; anything else runs as is.
case ${1:-} in
  mongod) shift ;;
  -*) ;;
  *) exec "$@" ;;
esac

if [ "$(id -u)" = 0 ]; then
  # A fresh named volume is root's: give it to mongodb, then run this script
  # again as mongodb (the _FILE secrets are read after that, as upstream),
  # with its own HOME: the server looks for ~/.secantus/secantusd.toml.
  chown -R mongodb:mongodb /data/db /data/configdb
  export HOME=/data/db
  exec setpriv --reuid=mongodb --regid=mongodb --init-groups "$0" mongod "$@"
fi

file_env MONGO_INITDB_ROOT_USERNAME
file_env MONGO_INITDB_ROOT_PASSWORD
export MONGO_INITDB_DATABASE=${MONGO_INITDB_DATABASE:-test}
server=(secantusd-py --standalone --storage-path /data/db)
root=
if [ -n "$MONGO_INITDB_ROOT_USERNAME" ] && [ -n "$MONGO_INITDB_ROOT_PASSWORD" ]; then
  root=yes
fi
scripts=$(find /docker-entrypoint-initdb.d -maxdepth 1 \( -name '*.js' -o -name '*.sh' \) 2>/dev/null | sort)

# As upstream: on the first start, with a root user or init scripts to run.
if [ -z "$(ls -A /data/db)" ] && { [ -n "$root" ] || [ -n "$scripts" ]; }; then
  # A server without auth, on 127.0.0.1 and another port, so that neither
  # other containers nor the health check see it before the users exist.
  "${server[@]}" --host 127.0.0.1 --port 27018 &
  init_pid=$!
  init_url=mongodb://127.0.0.1:27018
  for _ in $(seq 60); do
    mongosh --quiet "$init_url/admin" --eval "db.adminCommand('ping').ok" >/dev/null 2>&1 && break
    sleep 1
  done
  if [ -n "$root" ]; then
    mongosh --quiet "$init_url/admin" --eval \
      'db.createUser({user: process.env.MONGO_INITDB_ROOT_USERNAME, pwd: process.env.MONGO_INITDB_ROOT_PASSWORD, roles: [{role: "root", db: "admin"}]})' \
      >/dev/null
    echo "mongo: root user created"
  fi
  for f in $scripts; do
    echo "mongo: running $f"
    case $f in
      *.js) mongosh --quiet "$init_url/$MONGO_INITDB_DATABASE" "$f" ;;
      *.sh) . "$f" ;;
    esac
  done
  kill -TERM "$init_pid"
  wait "$init_pid" || true
fi
if [ -n "$root" ]; then
  server+=(--auth)
fi

# The server does not need the password: keep it out of its environment.
unset MONGO_INITDB_ROOT_PASSWORD
exec "${server[@]}" --host 0.0.0.0 --port 27017 "$@"
