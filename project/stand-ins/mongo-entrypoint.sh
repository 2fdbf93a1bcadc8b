#!/usr/bin/env bash
# The mongo stand-in's entrypoint: SecantusDB with the official image's
# MONGO_INITDB_ROOT_* variables.
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
server=(secantusd-py --standalone --storage-path /data/db)

if [ -n "$MONGO_INITDB_ROOT_USERNAME" ] && [ -n "$MONGO_INITDB_ROOT_PASSWORD" ]; then
  if [ -z "$(ls -A /data/db)" ]; then
    # Users are made on a server without auth: on 127.0.0.1 and another
    # port, so neither other containers nor the health check see it.
    "${server[@]}" --host 127.0.0.1 --port 27018 &
    init_pid=$!
    /opt/secantusdb/bin/python - <<'PY'
import os
from pymongo import MongoClient
client = MongoClient("mongodb://127.0.0.1:27018/?directConnection=true",
                     serverSelectionTimeoutMS=60000)
client.admin.command("createUser", os.environ["MONGO_INITDB_ROOT_USERNAME"],
                     pwd=os.environ["MONGO_INITDB_ROOT_PASSWORD"],
                     roles=[{"role": "root", "db": "admin"}])
print("mongo: root user created")
PY
    kill -TERM "$init_pid"
    wait "$init_pid" || true
  fi
  server+=(--auth)
fi

# The server does not need the password: keep it out of its environment.
unset MONGO_INITDB_ROOT_PASSWORD
exec "${server[@]}" --host 0.0.0.0 --port 27017 "$@"
